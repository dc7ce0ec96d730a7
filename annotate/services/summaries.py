"""`voicecap stats rebuild`: the summary tables recomputed from every take, caption, review and skip,
and every take's QC figures, flags and histograms judged again (with the settings of now).

The same Tally and keys as the incremental counting (db.summaries), so a rebuild and the running counts
agree by construction of the rules, and the tests check that they agree in fact. Rows are streamed, never
held all at once; the old rows are replaced in the same transaction, so readers see old or new figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session

from db import take_qc
from db.models import (
    Assignment,
    AssignmentStatus,
    Caption,
    Image,
    Project,
    Recording,
    Review,
)
from db.summaries import (
    DECISION_COLUMN,
    Tally,
    as_utc,
    caption_state_counts,
    day_of,
    derive_annotator_buckets,
)
from db.summary_models import (
    IMAGE_COUNT_SLOTS,
    NO_ANNOTATOR,
    ActiveDay,
    AnnotatorActiveDays,
    DailySummary,
    DurationBucket,
    ImageCount,
    MetricBucket,
    QcFlag,
    QcFlagCount,
    QcMedian,
    SummaryRollup,
    TakeFigures,
)

STREAM_ROWS = 5000


@dataclass
class RebuildReport:
    project_id: int | None
    takes: int
    summary_rows: int


def rebuild(session: Session, project_id: int | None = None) -> RebuildReport:
    """Replaces the summaries of one project (or all) with counts recomputed from scratch; caller commits."""
    for table in (
        DailySummary,
        SummaryRollup,
        DurationBucket,
        ImageCount,
        ActiveDay,
        TakeFigures,
        QcFlag,
        QcFlagCount,
        MetricBucket,
        QcMedian,
    ):
        statement = delete(table)
        if project_id is not None:
            statement = statement.where(table.project_id == project_id)
        session.execute(statement)
    if project_id is None:
        # Days across projects are marked again as the takes are counted; for one project the marks
        # of the other projects stand, and re-marking one of them counts nothing twice.
        session.execute(delete(AnnotatorActiveDays))
    tally = Tally()
    takes = _count_takes(session, tally, project_id)
    _count_captions(session, tally, project_id)
    _count_reviews(session, tally, project_id)
    _count_skips(session, tally, project_id)
    # Annotators' histograms across projects are derived from the recounted per-project ones, so a
    # rebuild of one project does not count the other projects' takes twice.
    tally.annotator_buckets.clear()
    tally.write(session.connection())
    derive_annotator_buckets(session.connection())
    _count_images(session, project_id)
    _judge_takes(session, project_id)
    return RebuildReport(project_id, takes, len(tally.daily))


def _stream(session: Session, query):  # type: ignore[no-untyped-def]
    return session.connection().execute(query.execution_options(yield_per=STREAM_ROWS))


def _count_takes(session: Session, tally: Tally, project_id: int | None) -> int:
    query = select(
        Recording.project_id,
        Recording.user_id,
        Recording.created_at,
        Recording.duration_seconds,
        Recording.status,
    )
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    count = 0
    for project, user, created, seconds, status in _stream(session, query):
        tally.add_take((project, user, day_of(as_utc(created))), seconds, status)
        count += 1
    return count


def _count_captions(session: Session, tally: Tally, project_id: int | None) -> None:
    query = (
        select(
            Image.project_id,
            Recording.user_id,
            Recording.created_at,
            Caption.created_at,
            Caption.status,
            Caption.flagged,
            Caption.word_count,
        )
        .join(Image, Image.id == Caption.image_id)
        .outerjoin(Recording, Recording.id == Caption.recording_id)
    )
    if project_id is not None:
        query = query.where(Image.project_id == project_id)
    for project, user, take_created, caption_created, status, flagged, words in _stream(session, query):
        key = _key(project, user, take_created, caption_created)
        tally.add(key, **caption_state_counts(status, flagged, words))


def _key(project: int, user: int | None, take_created: object, fallback: object) -> tuple[int, int, str]:
    if user is None:  # merged from several takes: counted for the project only
        return (project, NO_ANNOTATOR, day_of(as_utc(fallback)))
    return (project, user, day_of(as_utc(take_created)))


def _count_reviews(session: Session, tally: Tally, project_id: int | None) -> None:
    last = select(func.max(Review.id)).group_by(Review.caption_id)
    query = (
        select(Image.project_id, Recording.user_id, Recording.created_at, Review.created_at, Review.decision)
        .join(Caption, Caption.id == Review.caption_id)
        .join(Image, Image.id == Caption.image_id)
        .outerjoin(Recording, Recording.id == Caption.recording_id)
        .where(Review.id.in_(last))
    )
    if project_id is not None:
        query = query.where(Image.project_id == project_id)
    for project, user, _take_created, decided, decision in _stream(session, query):
        project_id_, user_id, _ = _key(project, user, decided, decided)
        tally.add((project_id_, user_id, day_of(as_utc(decided))), **{DECISION_COLUMN[decision]: 1})


def _count_skips(session: Session, tally: Tally, project_id: int | None) -> None:
    query = select(Assignment.project_id, Assignment.user_id, Assignment.updated_at).where(
        Assignment.status == AssignmentStatus.skipped
    )
    if project_id is not None:
        query = query.where(Assignment.project_id == project_id)
    for project, user, when in _stream(session, query):
        tally.add((project, user, day_of(as_utc(when))), skips=1)


def _judge_takes(session: Session, project_id: int | None) -> None:
    """Every take's QC figures, flags and histograms, a chunk of takes at a time (keyset on the id), then
    the annotators' median positions from the histograms."""
    last = 0
    while True:
        query = select(Recording.id).where(Recording.id > last).order_by(Recording.id).limit(take_qc.CHUNK)
        if project_id is not None:
            query = query.where(Recording.project_id == project_id)
        ids = list(session.scalars(query))
        if not ids:
            take_qc.recount_medians(session.connection(), project_id)
            return
        take_qc.refresh(session.connection(), ids, fresh=True)
        last = ids[-1]


def _count_images(session: Session, project_id: int | None) -> None:
    slot = (Image.id % IMAGE_COUNT_SLOTS).label("slot")
    complete = func.sum(case((Image.done_count >= Project.per_image, 1), else_=0))
    query = (
        select(Image.project_id, slot, func.count(), complete)
        .join(Project, Project.id == Image.project_id)
        .group_by(Image.project_id, slot)
    )
    if project_id is not None:
        query = query.where(Image.project_id == project_id)
    rows = [
        {"project_id": p, "slot": s, "images": n, "images_complete": int(c or 0)}
        for p, s, n, c in session.execute(query)
    ]
    if rows:
        session.execute(insert(ImageCount), rows)
