"""The merge sweep: one merged caption per image, written from all of its recordings' transcripts.

A merged caption needs every live recording of an image captioned, so it is not a queue job: the clean
processor offers this sweep and the worker runs it when idle after cleaning something. It finds its own
work and writes idempotently (the dedupe key names the source transcripts, prompt and model), so it is
safe to run again at any time, by any number of workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, ScalarSelect, Select, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    DEAD_RECORDING_STATES,
    Caption,
    CaptionKind,
    Project,
    Recording,
    RecordingStatus,
    Transcript,
)
from db.settings import Settings
from transcribe.clean.base import Cleaner
from transcribe.stages.captions import build_caption, merged_key, translation_flag

log = logging.getLogger("voicecap.clean")


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
    language: str | None  # the language spoken: the transcripts' own when they agree, else the project's
    caption_language: str | None  # the project's, when it asks for captions in another language


class MergeSweep:
    """The clean processor's sweep (transcribe.stages.base.Sweep): `merge_images` with its cleaner."""

    def __init__(self, cleaner: Cleaner, settings: Settings) -> None:
        self.cleaner = cleaner
        self.settings = settings

    def run(self, factory: sessionmaker[Session], project_id: int | None) -> dict[str, float]:
        report = merge_images(factory, self.cleaner, self.settings, project_id)
        return {
            "merged": float(report.written),
            "prompt_tokens": float(report.prompt_tokens),
            "completion_tokens": float(report.completion_tokens),
        }


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
    texts = [group.texts for group in groups]
    results = cleaner.merge_many(
        texts,
        languages=[group.language for group in groups],
        caption_languages=[group.caption_language for group in groups],
    )
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
            language=group.language,
            translation=translation_flag(group.language, group.caption_language, cleaner),
        )
        try:
            with factory() as session, session.begin():
                session.add(caption)
            report.written += 1
        except IntegrityError:
            log.info("merge: image %d already merged by someone else", group.image_id)
    return report


def _merge_groups(
    session: Session, cleaner: Cleaner, project_id: int | None, limit: int | None
) -> list[_MergeGroup]:
    """The images to merge now, each with the transcripts to merge from (see `_images_ready`)."""
    groups: list[_MergeGroup] = []
    for image_id in session.scalars(_images_ready(cleaner, project_id)):
        group = _group(session, cleaner, image_id)
        if group is None:
            continue
        groups.append(group)
        if limit is not None and len(groups) >= limit:
            break
    return groups


def _images_ready(cleaner: Cleaner, project_id: int | None) -> Select[tuple[int]]:
    """Images whose live recordings (at least max(2, project.per_image)) are all captioned and that
    have no merged caption of this cleaner, prompt and model newer than their newest single caption.

    The SQL does the filtering so a sweep over a large project reads only images with new work."""
    not_done = func.sum(case((Recording.status != RecordingStatus.captioned, 1), else_=0))
    wanted = case((Project.per_image > 2, Project.per_image), else_=2)
    newest_merged = _newest_caption(
        Caption.kind == CaptionKind.merged,
        Caption.cleaner == cleaner.name,
        Caption.prompt_version == cleaner.merge_prompt_version,
        Caption.model == cleaner.model,
    )
    newest_single = _newest_caption(Caption.kind == CaptionKind.single)
    query = (
        select(Recording.image_id)
        .join(Project, Project.id == Recording.project_id)
        .where(Recording.status.not_in(DEAD_RECORDING_STATES))
        .group_by(Recording.image_id, Project.per_image)
        .having(func.count() >= wanted, not_done == 0)
        .having(or_(newest_merged.is_(None), newest_single > newest_merged))
        .order_by(Recording.image_id)
    )
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    return query


def _newest_caption(*conditions: ColumnElement[bool]) -> ScalarSelect[datetime]:
    """When the newest caption of the outer row's image that meets `conditions` was written."""
    return (
        select(func.max(Caption.created_at))
        .where(Caption.image_id == Recording.image_id, *conditions)
        .scalar_subquery()
    )


def _group(session: Session, cleaner: Cleaner, image_id: int) -> _MergeGroup | None:
    """The image's non-empty transcripts of its current revisions, unless fewer than two or merged."""
    rows = session.execute(
        select(
            Transcript.id, Transcript.text, Transcript.language, Project.language, Project.caption_language
        )
        .join(Recording, Recording.id == Transcript.recording_id)
        .join(Project, Project.id == Recording.project_id)
        .where(
            Recording.image_id == image_id,
            Recording.status == RecordingStatus.captioned,
            Transcript.revision == Recording.revision,
        )
        .order_by(Recording.id)
    ).all()
    kept = [row for row in rows if row.text and row.text.strip()]
    if len(kept) < 2:
        return None
    ids = [row.id for row in kept]
    key = merged_key(image_id, ids, cleaner)
    if session.scalar(select(Caption.id).where(Caption.dedupe_key == key)) is not None:
        return None
    spoken = {row[2] for row in kept}
    language = spoken.pop() if len(spoken) == 1 else kept[0][3]
    return _MergeGroup(image_id, ids, [row.text for row in kept], key, language, kept[0][4])
