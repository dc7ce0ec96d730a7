"""The clean processor: claimed recordings' transcripts in, Caption rows out, for the "clean" stage.

`load` reads each claimed recording with its transcript of the current revision; `process` runs the
configured cleaner (transcribe/clean/, pure text in and out; an LLM cleaner runs its calls concurrently
inside) and builds the caption rows with their provenance and faithfulness flags; `store` adds them
with the row's state change. Merged captions (one per image from all of its transcripts) are the
processor's sweep (transcribe/stages/merge.py), which the worker runs when idle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from db.models import Caption, CaptionKind, Project, Recording, Transcript
from db.queue import STAGES, Stage
from db.settings import Settings, get_settings
from transcribe.clean import load_cleaner
from transcribe.clean.base import Cleaner, CleanResult, PermanentCleanError
from transcribe.stages.base import PermanentError, Sweep
from transcribe.stages.captions import build_caption, single_key, translation_flag
from transcribe.stages.merge import MergeSweep


@dataclass(frozen=True)
class CleanInput:
    recording: Recording
    transcript: Transcript
    spoken: str | None = None  # the transcript's language, else the project's
    caption_language: str | None = None  # the project's, when it asks for captions in another language


class CleanProcessor:
    """Cleans a batch of transcripts with the configured cleaner; one result per recording id."""

    stage: Stage = STAGES["clean"]

    def __init__(
        self, cleaner: Cleaner | None = None, settings: Settings | None = None, *, min_batch_size: int = 0
    ) -> None:
        self.settings = settings or get_settings()
        self.cleaner = cleaner or load_cleaner(self.settings)
        self.min_batch_size = min_batch_size
        self.sweep: Sweep | None = MergeSweep(self.cleaner, self.settings)
        self.claim_languages: Sequence[str] | None = None  # a cleaner takes every language

    @classmethod
    def from_settings(cls, settings: Settings) -> CleanProcessor:
        """The configured cleaner (settings.cleaner), sized for the worker.

        An LLM endpoint answers slowly but in parallel: claim enough rows to keep every concurrent
        request busy (a batch of 8 against 16-way concurrency would halve throughput).
        """
        min_batch = 2 * settings.llm_concurrency if settings.cleaner == "llm" else 0
        return cls(load_cleaner(settings), settings, min_batch_size=min_batch)

    def load(self, session: Session, recording_ids: list[int]) -> dict[int, CleanInput | Exception]:
        rows = session.execute(
            select(Recording, Transcript, Project.language, Project.caption_language)
            .join(Project, Project.id == Recording.project_id)
            .outerjoin(
                Transcript,
                and_(Transcript.recording_id == Recording.id, Transcript.revision == Recording.revision),
            )
            .where(Recording.id.in_(recording_ids))
        ).all()
        inputs: dict[int, CleanInput | Exception] = {
            rid: PermanentError(f"recording {rid} does not exist") for rid in recording_ids
        }
        for recording, transcript, project_language, caption_language in rows:
            if transcript is None:
                inputs[recording.id] = PermanentError(
                    f"recording {recording.id} has no transcript for revision {recording.revision}"
                )
            else:
                # Detached plain objects: the cleaner runs outside any transaction.
                session.expunge(recording)
                session.expunge(transcript)
                spoken = transcript.language or project_language
                inputs[recording.id] = CleanInput(recording, transcript, spoken, caption_language)
        return inputs

    def process(self, inputs: Mapping[int, CleanInput]) -> dict[int, list[Caption] | Exception]:
        """Per recording id: the captions to add, or the exception that failed this attempt."""
        results: dict[int, list[Caption] | Exception] = {}
        todo: list[CleanInput] = []
        for rid, item in inputs.items():
            if not item.transcript.text or not item.transcript.text.strip():
                results[rid] = PermanentCleanError("clean: the transcript is empty; nothing to caption")
            else:
                todo.append(item)
        cleaned = self.cleaner.clean_many(
            [item.transcript.text for item in todo],
            [item.transcript.language for item in todo],
            [item.caption_language for item in todo],
        )
        for item, result in zip(todo, cleaned, strict=True):
            if isinstance(result, Exception):
                results[item.recording.id] = result
            else:
                results[item.recording.id] = [self._caption(item, result)]
        return {rid: results.get(rid, RuntimeError("the cleaner returned no result")) for rid in inputs}

    def _caption(self, item: CleanInput, result: CleanResult) -> Caption:
        transcript = item.transcript
        return build_caption(
            result,
            image_id=item.recording.image_id,
            transcripts=[transcript.text],
            threshold=self.settings.faithfulness_threshold,
            kind=CaptionKind.single,
            dedupe_key=single_key(transcript.id, result),
            recording_id=item.recording.id,
            transcript_id=transcript.id,
            language=transcript.language,
            translation=translation_flag(item.spoken, item.caption_language, self.cleaner),
        )

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

    def close(self) -> None:
        self.cleaner.close()
