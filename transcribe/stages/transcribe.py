"""The transcription processor: a recording's 16 kHz WAV in, a Transcript row out.

The engine is loaded once and kept for the life of the worker. A batch is decoded, grouped by
language and handed to `engine.transcribe_batch` (faster-whisper's batched pipeline on GPU). If the
batch call fails, each recording is retried on its own so one bad file cannot fail its neighbours.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.blobstore import Blobs
from db.models import Project, ProjectMode, Recording, Transcript
from db.queue import STAGES, Stage
from db.settings import Settings, get_settings
from transcribe import language_policy
from transcribe.audio import AudioDecodeError, decode_audio
from transcribe.cascade import review
from transcribe.engines import TranscriptionEngine, TranscriptResult
from transcribe.stages.base import PermanentError, Sweep
from transcribe.stages.pointing import align_recording


@dataclass(frozen=True)
class TranscribeInput:
    recording_id: int
    revision: int
    wav_key: str
    language: str | None
    duration_seconds: float
    project_language: str | None = None
    pointing: bool = False  # a narrate or point take: its words are aligned with its trace and points


@dataclass
class TranscribeOutput:
    result: TranscriptResult
    flags: list[str]
    decode_seconds: float
    confidence: dict = field(default_factory=dict)


@dataclass
class StageTimings:
    """Where a worker's time goes, for bench/worker.py: decoding vs the engine itself."""

    decode_seconds: float = 0.0
    engine_seconds: float = 0.0
    batches: int = 0
    fallbacks: int = field(default=0)  # batches retried one recording at a time


class TranscribeProcessor:
    """Runs the "transcribe" stage with one engine, loaded once for the worker's life."""

    stage: Stage = STAGES["transcribe"]
    min_batch_size: int = 0
    sweep: Sweep | None = None  # nothing to follow up: a transcript needs only its own recording

    def __init__(
        self,
        engine: TranscriptionEngine,
        blobs: Blobs,
        language: str | None = None,
        thresholds: language_policy.Thresholds | None = None,
        escalation: TranscriptionEngine | None = None,
        check_language: bool = True,
        settings: Settings | None = None,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.language = language or None  # forced language (settings.language); else the project's
        self.timings = StageTimings()
        self.thresholds = thresholds or language_policy.Thresholds()
        self.escalation = escalation  # the confidence cascade's stronger model, if any
        self.check_language = check_language  # detect the spoken language (one more encoder pass)
        self.settings = settings or get_settings()  # the pointing link window
        # The worker claims only takes of these project languages (None: any); see language_policy.
        self.claim_languages = language_policy.claimable_languages(engine.model_name)

    def load(self, session: Session, recording_ids: list[int]) -> dict[int, TranscribeInput | Exception]:
        rows = session.execute(
            select(Recording, Project.language, Project.mode)
            .join(Project, Project.id == Recording.project_id)
            .where(Recording.id.in_(recording_ids))
        ).all()
        found = {
            recording.id: TranscribeInput(
                recording_id=recording.id,
                revision=recording.revision,
                wav_key=recording.wav_key,
                language=self.language or language or None,
                duration_seconds=recording.duration_seconds,
                project_language=language or None,
                pointing=mode != ProjectMode.describe,
            )
            for recording, language, mode in rows
        }
        return {
            rid: found.get(rid, PermanentError(f"recording {rid} does not exist")) for rid in recording_ids
        }

    def process(self, inputs: Mapping[int, TranscribeInput]) -> dict[int, TranscribeOutput | Exception]:
        outputs: dict[int, TranscribeOutput | Exception] = {}
        audios: dict[int, np.ndarray] = {}
        decode_seconds: dict[int, float] = {}
        for rid, item in inputs.items():
            started = time.perf_counter()
            try:
                audios[rid] = self._decode(item)
            except Exception as exc:
                outputs[rid] = exc
            decode_seconds[rid] = time.perf_counter() - started
            self.timings.decode_seconds += decode_seconds[rid]
        by_language: dict[str | None, list[int]] = {}
        for rid in audios:
            by_language.setdefault(inputs[rid].language, []).append(rid)
        for language, ids in by_language.items():
            for rid, result in self._transcribe(ids, [audios[rid] for rid in ids], language).items():
                if isinstance(result, Exception):
                    outputs[rid] = result
                else:
                    outputs[rid] = self._review(inputs[rid], result, audios[rid], decode_seconds[rid])
        self.timings.batches += 1
        return outputs

    def _review(
        self, item: TranscribeInput, result: TranscriptResult, audio: np.ndarray, decode_seconds: float
    ) -> TranscribeOutput | Exception:
        try:
            reviewed = review(
                result,
                audio,
                engine=self.engine,
                project_language=item.project_language,
                forced_language=item.language,
                thresholds=self.thresholds,
                escalation=self.escalation,
                check_language=self.check_language,
            )
        except Exception as exc:  # the escalation model failing fails this take's attempt, not the batch
            return exc
        return TranscribeOutput(reviewed.result, reviewed.flags, decode_seconds, reviewed.confidence)

    def _decode(self, item: TranscribeInput) -> np.ndarray:
        if not self.blobs.exists(item.wav_key):
            # Not permanent: shared storage may be mounted late or still syncing.
            raise FileNotFoundError(f"audio blob {item.wav_key} is missing from the blob store")
        try:
            with self.blobs.local_file(item.wav_key) as path:
                audio = decode_audio(path)
        except AudioDecodeError as exc:
            raise PermanentError(str(exc)) from exc
        if audio.size == 0:
            raise PermanentError("the audio holds no samples")
        return audio

    def _transcribe(
        self, ids: list[int], audios: list[np.ndarray], language: str | None
    ) -> dict[int, TranscriptResult | Exception]:
        started = time.perf_counter()
        try:
            results = self.engine.transcribe_batch(audios, language)
            if len(results) != len(ids):
                raise RuntimeError(f"engine returned {len(results)} results for {len(ids)} recordings")
            return dict(zip(ids, results, strict=True))
        except Exception as exc:
            if len(ids) == 1:
                return {ids[0]: exc}
            self.timings.fallbacks += 1
        finally:
            self.timings.engine_seconds += time.perf_counter() - started
        # One at a time, so the failure lands on the recording that caused it.
        outputs: dict[int, TranscriptResult | Exception] = {}
        for rid, audio in zip(ids, audios, strict=True):
            started = time.perf_counter()
            try:
                outputs[rid] = self.engine.transcribe(audio, language)
            except Exception as exc:
                outputs[rid] = exc
            self.timings.engine_seconds += time.perf_counter() - started
        return outputs

    def store(
        self, session: Session, recording_id: int, item: TranscribeInput, output: TranscribeOutput
    ) -> None:
        if self.already_stored(session, recording_id, item):
            return
        result = output.result
        session.add(
            Transcript(
                recording_id=recording_id,
                revision=item.revision,
                text=result.text,
                language=result.language,
                segments=result.segments_json(),
                words=result.words_json(),
                avg_logprob=result.avg_logprob,
                engine=result.engine,
                model=result.model,
                engine_version=result.engine_version,
                audio_seconds=result.audio_seconds,
                processing_seconds=result.processing_seconds,
                word_count=result.word_count,
                words_per_minute=round(result.words_per_minute, 2),
                flags=output.flags,
                confidence=output.confidence,
            )
        )
        if item.pointing:  # in this transaction, so a transcript is never stored without its alignment
            session.flush()
            align_recording(session, recording_id, self.settings)

    def already_stored(self, session: Session, recording_id: int, item: TranscribeInput) -> bool:
        return (
            session.scalar(
                select(Transcript.id).where(
                    Transcript.recording_id == recording_id, Transcript.revision == item.revision
                )
            )
            is not None
        )

    def units(self, item: TranscribeInput, output: TranscribeOutput) -> dict[str, float]:
        return {
            "audio_seconds": output.result.audio_seconds,
            "engine_seconds": output.result.processing_seconds,
            "words": float(output.result.word_count),
            "flagged": 1.0 if output.flags else 0.0,
            "unsure": 1.0 if "unsure" in output.flags else 0.0,
            "escalated": 1.0 if "cascade" in output.confidence else 0.0,
        }

    def close(self) -> None:
        """Nothing to release: the engine lives as long as the process."""
