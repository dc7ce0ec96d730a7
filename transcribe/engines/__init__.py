"""Speech-to-text engines behind one interface, chosen by name in settings.

engine = load_engine()                     # settings: VOICECAP_ENGINE, VOICECAP_MODEL, ...
result = engine.transcribe(decode_audio(path))
"""

from __future__ import annotations

from db.settings import Settings, get_settings
from transcribe.engines.base import (
    Segment,
    TranscriptionEngine,
    TranscriptResult,
    Word,
    available_cpus,
)

ENGINE_NAMES = ("faster-whisper", "openai-whisper")

__all__ = [
    "ENGINE_NAMES",
    "Segment",
    "TranscriptResult",
    "TranscriptionEngine",
    "Word",
    "available_cpus",
    "load_engine",
]


def load_engine(
    settings: Settings | None = None,
    *,
    engine: str | None = None,
    model: str | None = None,
    device: str | None = None,
    compute_type: str | None = None,
) -> TranscriptionEngine:
    """Load the configured engine once (per worker); keyword arguments override settings."""
    settings = settings or get_settings()
    name = engine or settings.engine
    common = {
        "model": model or settings.model,
        "device": device or settings.device,
        "cpu_threads": settings.cpu_threads,
        "beam_size": settings.beam_size,
        "vad_filter": settings.vad_filter,
        "language": settings.language or None,
    }
    if name == "faster-whisper":
        from transcribe.engines.faster import FasterWhisperEngine

        return FasterWhisperEngine(
            compute_type=compute_type or settings.compute_type, batch_size=settings.batch_size, **common
        )
    if name == "openai-whisper":
        from transcribe.engines.reference import OpenAIWhisperEngine

        return OpenAIWhisperEngine(**common)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
