"""The processors a worker runs, built once from settings (models load here, not per job)."""

from __future__ import annotations

from db.blobstore import open_blobstore
from db.queue import STAGES
from db.settings import Settings
from transcribe.stages.base import StageProcessor


def parse_stages(text: str) -> list[str]:
    """ "transcribe,clean" -> ["transcribe", "clean"], in pipeline order, each known."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STAGES]
    if unknown or not names:
        raise ValueError(
            f"unknown stage(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(STAGES)}"
        )
    return [name for name in STAGES if name in names]


def build_processors(
    settings: Settings,
    stages: list[str],
    *,
    engine: str | None = None,
    model: str | None = None,
    device: str | None = None,
    compute_type: str | None = None,
) -> list[StageProcessor]:
    """One processor per named stage, in pipeline order; heavy imports only for the stages asked for."""
    processors: list[StageProcessor] = []
    if "transcribe" in stages:
        from transcribe.engines import load_engine
        from transcribe.language_policy import Thresholds
        from transcribe.stages.transcribe import TranscribeProcessor

        loaded = load_engine(settings, engine=engine, model=model, device=device, compute_type=compute_type)
        escalation = None
        if settings.escalation_model:
            escalation = load_engine(
                settings,
                engine=engine,
                model=settings.escalation_model,
                device=device,
                compute_type=compute_type,
            )
        thresholds = Thresholds(
            settings.unsure_word_probability, settings.unsure_word_share, settings.unsure_mean_logprob
        )
        blobs = open_blobstore(settings.blob_location)
        processors.append(
            TranscribeProcessor(
                loaded,
                blobs,
                settings.language,
                thresholds,
                escalation,
                settings.check_language,
                settings=settings,
            )
        )
    if "clean" in stages:
        from transcribe.stages.clean import CleanProcessor

        processors.append(CleanProcessor.from_settings(settings))
    return processors
