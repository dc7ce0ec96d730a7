"""The clean stage: claimed (Recording, Transcript) pairs in, Caption rows out.

`CleanProcessor.run` is what the worker loop calls (through transcribe/clean_stage.py) between its
claim and its per-recording store-and-complete transactions; it never touches the database. The
merged captions of an image need to see all of its recordings, so they are written by a separate
sweep, `merge_images`, that the worker runs when idle (CleanStage.sweep) and that is safe to run again
any time. A merged caption has no single transcript: the ids of the transcripts it was written from are
in its dedupe key ("merged:<image>:<t1>+<t2>:<cleaner>:<prompt>:<model>").

Every caption carries its provenance (cleaner, model, prompt version, transcript, time, faithfulness
flags) and a dedupe key built from it: the same job done twice stores one caption, and a new prompt
version or model adds a new caption beside the old ones instead of overwriting them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.models import Caption, CaptionKind, Project, Recording, RecordingStatus, Transcript
from db.queue import STAGES
from db.settings import Settings, get_settings
from transcribe.clean import load_cleaner
from transcribe.clean.base import Cleaner, CleanResult, PermanentCleanError, clean_in_languages
from transcribe.clean.faithfulness import check

log = logging.getLogger("voicecap.clean")

DEDUPE_KEY_LENGTH = 300  # Caption.dedupe_key is String(300)


def _fit(key: str, tail: str) -> str:
    """Append `tail` (a model name can be a long path), hashing it when the key would not fit."""
    full = f"{key}:{tail}"
    if len(full) <= DEDUPE_KEY_LENGTH:
        return full
    return f"{key}:sha1-{hashlib.sha1(tail.encode()).hexdigest()}"


def single_key(transcript_id: int, result: CleanResult) -> str:
    return _fit(f"single:{transcript_id}:{result.cleaner}:{result.prompt_version}", result.model)


def merged_key(image_id: int, transcript_ids: Sequence[int], cleaner: Cleaner) -> str:
    ids = "+".join(str(i) for i in sorted(transcript_ids))
    if len(ids) > 100:
        ids = "sha1-" + hashlib.sha1(ids.encode()).hexdigest()
    return _fit(f"merged:{image_id}:{ids}:{cleaner.name}:{cleaner.merge_prompt_version}", cleaner.model)


def build_caption(
    result: CleanResult,
    *,
    image_id: int,
    transcripts: Sequence[str],
    threshold: float,
    kind: CaptionKind,
    dedupe_key: str,
    recording_id: int | None = None,
    transcript_id: int | None = None,
    language: str | None = None,
) -> Caption:
    """A Caption row (not added to any session) with its faithfulness report filled in."""
    report = check(result.text, list(transcripts), threshold, language=language)
    flags = list(report.flags)
    if report.missing_numbers:
        flags.append("numbers_lost:" + ",".join(report.missing_numbers))
    if "low_coverage" in report.flags:
        flags.append(f"coverage:{report.coverage:.2f}")
    return Caption(
        image_id=image_id,
        recording_id=recording_id,
        transcript_id=transcript_id,
        kind=kind,
        dedupe_key=dedupe_key,
        text=result.text,
        cleaner=result.cleaner,
        model=result.model,
        prompt_version=result.prompt_version,
        word_count=len(result.text.split()),
        faithfulness=report.score,
        unsupported_words=report.unsupported_words,
        flags=flags,
        flagged=report.flagged,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        status="pending",
    )


class CleanProcessor:
    """Cleans a batch of transcripts with the configured cleaner; one result per recording id."""

    stage = STAGES["clean"]

    def __init__(self, cleaner: Cleaner | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.cleaner = cleaner or load_cleaner(self.settings)

    def run(self, recordings: Sequence[tuple[Recording, Transcript]]) -> dict[int, list[Caption] | Exception]:
        """Per recording id: the captions to add, or the exception that failed this attempt.

        Synchronous; an LLM cleaner runs its calls concurrently inside (settings.llm_concurrency).
        """
        results: dict[int, list[Caption] | Exception] = {}
        todo: list[tuple[Recording, Transcript]] = []
        for recording, transcript in recordings:
            if not transcript.text or not transcript.text.strip():
                results[recording.id] = PermanentCleanError(
                    "clean: the transcript is empty; nothing to caption"
                )
            else:
                todo.append((recording, transcript))
        cleaned = clean_in_languages(self.cleaner, [t.text for _, t in todo], [t.language for _, t in todo])
        for (recording, transcript), result in zip(todo, cleaned, strict=True):
            if isinstance(result, Exception):
                results[recording.id] = result
                continue
            results[recording.id] = [
                build_caption(
                    result,
                    image_id=recording.image_id,
                    transcripts=[transcript.text],
                    threshold=self.settings.faithfulness_threshold,
                    kind=CaptionKind.single,
                    dedupe_key=single_key(transcript.id, result),
                    recording_id=recording.id,
                    transcript_id=transcript.id,
                    language=transcript.language,
                )
            ]
        return results

    def close(self) -> None:
        self.cleaner.close()


# -- merged captions ---------------------------------------------------------------------------


@dataclass
class MergeReport:
    images: int = 0  # images that had every recording captioned and no merged caption of this version
    written: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # image id -> error
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class _MergeGroup:
    image_id: int
    transcript_ids: list[int]
    texts: list[str]
    key: str


NOT_LIVE = (RecordingStatus.rejected, RecordingStatus.failed)


def _merge_groups(
    session: Session, cleaner: Cleaner, project_id: int | None, limit: int | None
) -> list[_MergeGroup]:
    """Images whose live recordings (at least max(2, project.per_image)) are all captioned and that
    have no merged caption of this cleaner, prompt and model newer than their newest single caption.

    The SQL does the filtering so a sweep over a large project reads only images with new work."""
    not_done = func.sum(case((Recording.status != RecordingStatus.captioned, 1), else_=0))
    wanted = case((Project.per_image > 2, Project.per_image), else_=2)
    newest_merged = (
        select(func.max(Caption.created_at))
        .where(
            Caption.image_id == Recording.image_id,
            Caption.kind == CaptionKind.merged,
            Caption.cleaner == cleaner.name,
            Caption.prompt_version == cleaner.merge_prompt_version,
            Caption.model == cleaner.model,
        )
        .scalar_subquery()
    )
    newest_single = (
        select(func.max(Caption.created_at))
        .where(Caption.image_id == Recording.image_id, Caption.kind == CaptionKind.single)
        .scalar_subquery()
    )
    query = (
        select(Recording.image_id)
        .join(Project, Project.id == Recording.project_id)
        .where(Recording.status.not_in(NOT_LIVE))
        .group_by(Recording.image_id, Project.per_image)
        .having(func.count() >= wanted, not_done == 0)
        .having(or_(newest_merged.is_(None), newest_single > newest_merged))
        .order_by(Recording.image_id)
    )
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    groups: list[_MergeGroup] = []
    for image_id in session.scalars(query):
        rows = session.execute(
            select(Transcript.id, Transcript.text)
            .join(Recording, Recording.id == Transcript.recording_id)
            .where(
                Recording.image_id == image_id,
                Recording.status == RecordingStatus.captioned,
                Transcript.revision == Recording.revision,
            )
            .order_by(Recording.id)
        ).all()
        texts = [(tid, text) for tid, text in rows if text and text.strip()]
        if len(texts) < 2:
            continue
        ids = [tid for tid, _ in texts]
        key = merged_key(image_id, ids, cleaner)
        if session.scalar(select(Caption.id).where(Caption.dedupe_key == key)) is not None:
            continue
        groups.append(_MergeGroup(image_id, ids, [text for _, text in texts], key))
        if limit is not None and len(groups) >= limit:
            break
    return groups


def merge_images(
    factory: sessionmaker[Session],
    cleaner: Cleaner,
    settings: Settings,
    project_id: int | None = None,
    limit: int | None = None,
) -> MergeReport:
    """Write one merged caption per image whose recordings are all captioned (idempotent); only
    when settings.merge_captions is on and the cleaner can merge (the llm cleaner).

    The LLM calls run between two short transactions, never inside one (on SQLite a transaction holds
    the write lock).
    """
    report = MergeReport()
    if not (settings.merge_captions and cleaner.can_merge):
        return report
    with factory() as session, session.begin():
        groups = _merge_groups(session, cleaner, project_id, limit)
    report.images = len(groups)
    if not groups:
        return report
    results = cleaner.merge_many([group.texts for group in groups])
    for group, result in zip(groups, results, strict=True):
        if isinstance(result, Exception):
            report.failed[group.image_id] = str(result)
            log.warning("merge: image %d: %s", group.image_id, result)
            continue
        report.prompt_tokens += result.prompt_tokens
        report.completion_tokens += result.completion_tokens
        caption = build_caption(
            result,
            image_id=group.image_id,
            transcripts=group.texts,
            threshold=settings.faithfulness_threshold,
            kind=CaptionKind.merged,
            dedupe_key=group.key,
        )
        try:
            with factory() as session, session.begin():
                session.add(caption)
            report.written += 1
        except IntegrityError:
            log.info("merge: image %d already merged by someone else", group.image_id)
    return report
