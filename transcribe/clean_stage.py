"""The cleaning stage as the worker loop sees it: a thin adapter around transcribe.clean's CleanProcessor.

CleanProcessor turns (Recording, Transcript) pairs into Caption rows (with its own concurrency for LLM
calls); this adapter reads those pairs for the claimed rows, stores the captions with the row's state
change, and reports token usage for progress and cost. Merged captions (one per image from all its
transcripts) are written by `sweep`, which the worker runs when it is idle after cleaning something.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Caption, Recording, Transcript
from db.settings import Settings
from transcribe.stage import PermanentError


class CaptionWriter(Protocol):
    """What transcribe.clean.stage.CleanProcessor offers."""

    def run(self, recordings: list[tuple[Recording, Transcript]]) -> dict[int, list[Caption] | Exception]: ...


@dataclass(frozen=True)
class CleanInput:
    recording: Recording
    transcript: Transcript


class CleanStage:
    stage = "clean"

    def __init__(self, processor: CaptionWriter, min_batch_size: int = 0) -> None:
        self.processor = processor
        # The worker claims at least this many rows a batch (see build_clean_stage).
        self.min_batch_size = min_batch_size

    def load(self, session: Session, recording_ids: list[int]) -> dict[int, CleanInput | Exception]:
        rows = session.execute(
            select(Recording, Transcript)
            .outerjoin(
                Transcript,
                and_(Transcript.recording_id == Recording.id, Transcript.revision == Recording.revision),
            )
            .where(Recording.id.in_(recording_ids))
        ).all()
        inputs: dict[int, CleanInput | Exception] = {
            rid: PermanentError(f"recording {rid} does not exist") for rid in recording_ids
        }
        for recording, transcript in rows:
            if transcript is None:
                inputs[recording.id] = PermanentError(
                    f"recording {recording.id} has no transcript for revision {recording.revision}"
                )
            else:
                # Detached plain objects: the cleaner runs outside any transaction.
                session.expunge(recording)
                session.expunge(transcript)
                inputs[recording.id] = CleanInput(recording, transcript)
        return inputs

    def process(self, inputs: Mapping[int, CleanInput]) -> dict[int, Sequence[Caption] | Exception]:
        pairs = [(item.recording, item.transcript) for item in inputs.values()]
        results = self.processor.run(pairs)
        return {rid: results.get(rid, RuntimeError("the cleaner returned no result")) for rid in inputs}

    def store(self, session: Session, recording_id: int, item: CleanInput, output: Sequence[Caption]) -> None:
        keys = [caption.dedupe_key for caption in output]
        existing = set(session.scalars(select(Caption.dedupe_key).where(Caption.dedupe_key.in_(keys))))
        session.add_all(caption for caption in output if caption.dedupe_key not in existing)

    def already_stored(self, session: Session, recording_id: int, item: CleanInput) -> bool:
        query = select(Caption.id).where(
            Caption.recording_id == recording_id, Caption.transcript_id == item.transcript.id
        )
        return session.scalar(query.limit(1)) is not None

    def units(self, item: CleanInput, output: Sequence[Caption]) -> dict[str, float]:
        return {
            "captions": float(len(output)),
            "prompt_tokens": float(sum(c.prompt_tokens or 0 for c in output)),
            "completion_tokens": float(sum(c.completion_tokens or 0 for c in output)),
            "flagged": float(sum(1 for c in output if c.flagged)),
        }

    def sweep(self, factory: sessionmaker[Session], project_id: int | None) -> dict[str, float]:
        """Merged captions need every recording of an image captioned, so they are a sweep, not a job."""
        from transcribe.clean.stage import merge_images

        processor: Any = self.processor
        report = merge_images(factory, processor.cleaner, processor.settings, project_id)
        return {
            "merged": float(report.written),
            "prompt_tokens": float(report.prompt_tokens),
            "completion_tokens": float(report.completion_tokens),
        }

    def close(self) -> None:
        close = getattr(self.processor, "close", None)
        if close is not None:
            close()


def build_clean_stage(settings: Settings) -> CleanStage:
    """The configured cleaner (settings.cleaner) wrapped for the worker."""
    from transcribe.clean import load_cleaner
    from transcribe.clean.stage import CleanProcessor

    # An LLM endpoint answers slowly but in parallel: claim enough rows to keep every concurrent request
    # busy (a batch of 8 against 16-way concurrency would halve throughput).
    min_batch = 2 * settings.llm_concurrency if settings.cleaner == "llm" else 0
    return CleanStage(CleanProcessor(load_cleaner(settings), settings), min_batch_size=min_batch)
