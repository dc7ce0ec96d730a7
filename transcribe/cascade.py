"""After the first pass: measure a transcript, check the language spoken, and escalate it if unsure.

`review` is what the transcription stage calls for each result (transcribe/stages/transcribe.py): it
returns the transcript to store, its flags and its `Transcript.confidence` figures. The decisions are
the pure functions of transcribe/language_policy.py; this module only runs the engines they ask for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transcribe import language_policy as policy
from transcribe.engines import TranscriptionEngine, TranscriptResult
from transcribe.guard import plausibility_flags

log = logging.getLogger("voicecap.cascade")


@dataclass
class Reviewed:
    result: TranscriptResult
    flags: list[str]
    confidence: dict[str, Any] = field(default_factory=dict)


def detect_language(engine: TranscriptionEngine, audio: np.ndarray) -> tuple[str, float] | None:
    """The spoken language by the engine's own detector; None for English-only models or engines
    without one."""
    detect = getattr(engine, "detect_language", None)
    if detect is None or not getattr(engine, "multilingual", False):
        return None
    return detect(audio)


def review(
    result: TranscriptResult,
    audio: np.ndarray,
    *,
    engine: TranscriptionEngine,
    project_language: str | None,
    forced_language: str | None,
    thresholds: policy.Thresholds,
    escalation: TranscriptionEngine | None = None,
    check_language: bool = True,
) -> Reviewed:
    confidence = policy.measure(result, thresholds)
    cascade: dict[str, Any] | None = None
    if confidence.unsure and escalation is not None:
        second = escalation.transcribe(audio, forced_language)
        second_confidence = policy.measure(second, thresholds)
        decision = policy.choose(result, confidence, second, second_confidence)
        cascade = decision.provenance
        log.info("cascade: %s -> kept %s (%s)", result.model, decision.provenance["kept"], decision.reason)
        if decision.keep_second:
            result, confidence = second, second_confidence
    flags = plausibility_flags(result)
    if confidence.unsure:
        flags.append("unsure")
    figures: dict[str, Any] = confidence.as_dict()
    detector = engine if getattr(engine, "multilingual", False) else escalation
    wanted = check_language and project_language and detector is not None
    detected = detect_language(detector, audio) if wanted else None
    if detected is not None:
        figures["detected_language"], figures["detected_probability"] = detected
        mismatch = policy.language_flag(project_language, *detected)
        if mismatch:
            flags.append(mismatch)
    if cascade is not None:
        figures["cascade"] = cascade
    return Reviewed(result, flags, figures)
