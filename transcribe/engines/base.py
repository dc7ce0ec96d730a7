"""What every speech-to-text engine returns and the interface it implements.

Plain dataclasses, like faster-whisper's own `Segment`/`Word`: the worker stores a `TranscriptResult`
in the `transcripts` table (`segments_json()` fills `Transcript.segments`, `words_json()` fills
`Transcript.words`) without knowing which engine produced it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

SAMPLE_RATE = 16000


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    avg_logprob: float | None
    no_speech_prob: float | None
    words: list[Word] = field(default_factory=list)
    compression_ratio: float | None = None  # gzip ratio of the text; > 2.4 suggests a repetition loop


@dataclass
class TranscriptResult:
    text: str
    language: str
    segments: list[Segment]
    avg_logprob: float | None
    engine: str
    model: str
    engine_version: str
    audio_seconds: float
    processing_seconds: float
    language_probability: float | None = None

    def segments_json(self) -> list[dict]:
        """JSON-ready segments (rounded times) for `Transcript.segments`, without their words."""
        return [
            _rounded({f.name: getattr(segment, f.name) for f in fields(segment) if f.name != "words"})
            for segment in self.segments
        ]

    def words_json(self) -> list[dict]:
        """JSON-ready words of all segments in order (rounded times) for `Transcript.words`."""
        return [_rounded(asdict(word)) for segment in self.segments for word in segment.words]

    @property
    def word_count(self) -> int:
        return len(self.text.split())

    @property
    def words_per_minute(self) -> float:
        return 60.0 * self.word_count / self.audio_seconds if self.audio_seconds > 0 else 0.0

    @property
    def real_time_factor(self) -> float:
        """Processing time per second of audio (lower is faster; 0.1 = ten times real time)."""
        return self.processing_seconds / self.audio_seconds if self.audio_seconds > 0 else 0.0


@runtime_checkable
class TranscriptionEngine(Protocol):
    """A loaded model: construct once per worker, then call `transcribe` for each recording."""

    name: str
    model_name: str

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> TranscriptResult:
        """Transcribe 16 kHz mono float32 samples."""
        ...

    def transcribe_batch(
        self, audios: list[np.ndarray], language: str | None = None
    ) -> list[TranscriptResult]:
        """Transcribe several recordings with the one loaded model; results in input order."""
        ...


def build_result(
    segments: list[Segment],
    *,
    language: str,
    engine: str,
    model: str,
    engine_version: str,
    audio_seconds: float,
    processing_seconds: float,
    language_probability: float | None = None,
) -> TranscriptResult:
    """Join segment texts and average their log-probabilities (weighted by duration) into one result."""
    kept = [segment for segment in segments if segment.text.strip()]
    return TranscriptResult(
        text=" ".join(segment.text.strip() for segment in kept),
        language=language,
        segments=kept,
        avg_logprob=_weighted_logprob(kept),
        engine=engine,
        model=model,
        engine_version=engine_version,
        audio_seconds=round(audio_seconds, 3),
        processing_seconds=round(processing_seconds, 3),
        language_probability=language_probability,
    )


def as_audio_array(audio: np.ndarray) -> np.ndarray:
    """Validate engine input: one channel of float32 samples."""
    array = np.asarray(audio)
    if array.ndim != 1:
        raise ValueError(f"expected mono audio (1-D samples), got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota if one is set."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def resolve_threads(cpu_threads: int) -> int:
    """`cpu_threads` = 0 means all available cores; more threads than cores only slows Whisper down."""
    return cpu_threads if cpu_threads > 0 else available_cpus()


def default_language(model_name: str, language: str | None) -> str | None:
    """English-only checkpoints (*.en) need no language detection."""
    if language:
        return language
    return "en" if Path(model_name).name.split(".pt")[0].endswith(".en") else None


def _weighted_logprob(segments: Iterable[Segment]) -> float | None:
    pairs = [(s.avg_logprob, max(s.end - s.start, 0.01)) for s in segments if s.avg_logprob is not None]
    if not pairs:
        return None
    total = sum(weight for _, weight in pairs)
    return round(sum(value * weight for value, weight in pairs) / total, 4)


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value
