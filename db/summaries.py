"""Keeps the summary tables (db.summary_models) in step with the rows they count.

Every change is an additive upsert (INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n), so two
transactions counting into the same row never lose an update on PostgreSQL or SQLite, and a rolled-back
change takes its counts with it. Changes made through the ORM are counted by an `after_flush` hook, which
sees every new or changed take, caption (by status), review and assignment whatever code path made it;
the queue's bulk UPDATEs that fail takes call `takes_died` themselves.
"""

from __future__ import annotations

import math
import weakref
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, event, func, insert, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import get_history

from db import take_qc
from db.models import (
    Assignment,
    AssignmentStatus,
    Caption,
    CaptionStatus,
    Image,
    Project,
    Recording,
    Review,
    ReviewDecision,
    Transcript,
)
from db.summary_models import (
    ALL_ANNOTATORS,
    ALL_DAYS,
    ALL_PROJECTS,
    CAPTION_STATE_COLUMNS,
    DAY_ROLLUP_SKIPS_FOR_NO_ANNOTATOR,
    IMAGE_COUNT_SLOTS,
    NO_ANNOTATOR,
    ROLLUP_SLOTS,
    TAKE_STATE_COLUMNS,
    ActiveDay,
    AnnotatorActiveDays,
    AnnotatorDurationBucket,
    DailySummary,
    DurationBucket,
    ImageCount,
    SummaryRollup,
    TakeFigures,
)

Key = tuple[int, int, str]  # project_id, user_id, day
RollupKey = tuple[int, int, str, int]  # project_id, user_id or ALL_ANNOTATORS, day or ALL_DAYS, slot
Counts = dict[Key, dict[str, float]]

BUCKET_BASE_SECONDS = 0.1
BUCKET_GROWTH = 1.05
FLOAT_COLUMNS = {"audio_seconds", "seconds"}
DECISION_COLUMN = {
    ReviewDecision.approve: "approved",
    ReviewDecision.edit: "approved",
    ReviewDecision.reject: "rejected",
    ReviewDecision.retranscribe: "sent_back",
    ReviewDecision.reclean: "sent_back",
}


def day_of(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


def duration_bucket(seconds: float) -> int:
    if not seconds or seconds <= BUCKET_BASE_SECONDS:
        return 0
    return 1 + int(math.log(seconds / BUCKET_BASE_SECONDS) / math.log(BUCKET_GROWTH))


def take_state_counts(status: Any) -> dict[str, float]:
    """The columns a take in `status` counts in besides `takes` (failed or rejected ones)."""
    column = TAKE_STATE_COLUMNS.get(getattr(status, "value", status) or "")
    return {column: 1} if column else {}


def caption_state_counts(status: Any, flagged: bool, words: int) -> dict[str, float]:
    """The columns a caption in `status` counts in: its status, pending-and-flagged, current words."""
    value = getattr(status, "value", status)
    counts: dict[str, float] = {CAPTION_STATE_COLUMNS[value]: 1}
    if value == CaptionStatus.pending and flagged:
        counts["captions_flagged_pending"] = 1
    if value != CaptionStatus.superseded:
        counts["caption_words"] = words or 0
    return counts


class Tally:
    """Increments gathered over one flush, written as one upsert per summary row touched."""

    def __init__(self) -> None:
        self.daily: Counts = defaultdict(lambda: defaultdict(float))
        self.rollups: dict[RollupKey, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.buckets: dict[tuple[int, int, str, int], dict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.annotator_buckets: dict[tuple[int, int], dict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )

    def add(self, key: Key, sign: int = 1, **counts: float) -> None:
        project, user, day = key
        slot = user % ROLLUP_SLOTS
        for column, value in counts.items():
            self.daily[key][column] += sign * value
            self.rollups[(project, user, ALL_DAYS, slot)][column] += sign * value
            self.rollups[(project, ALL_ANNOTATORS, ALL_DAYS, slot)][column] += sign * value
            if not (user == NO_ANNOTATOR and column in DAY_ROLLUP_SKIPS_FOR_NO_ANNOTATOR):
                self.rollups[(project, ALL_ANNOTATORS, day, slot)][column] += sign * value

    def add_take(self, key: Key, seconds: float, status: Any) -> None:
        self.add(key, takes=1, audio_seconds=seconds, **take_state_counts(status))
        project, user, day = key
        # Each take in four histograms, so every grouping reads a few thousand rows, never one per
        # annotator and day: the project's, per annotator, per day, and per annotator and day.
        for grain in ((project, user, day), (project, user, ALL_DAYS), (project, ALL_ANNOTATORS, day)):
            self._bucket(grain, seconds)
        self._bucket((project, ALL_ANNOTATORS, ALL_DAYS), seconds)
        across = self.annotator_buckets[(user, duration_bucket(seconds))]  # and per annotator, all projects
        across["takes"] += 1
        across["seconds"] += seconds

    def _bucket(self, grain: Key, seconds: float) -> None:
        bucket = self.buckets[(*grain, duration_bucket(seconds))]
        bucket["takes"] += 1
        bucket["seconds"] += seconds

    def write(self, conn: Connection) -> None:
        # A fixed order (daily rows, roll-ups, buckets, annotators' buckets, day marks; each sorted):
        # concurrent writers cannot deadlock.
        became_active: list[Key] = []
        for key, counts in sorted(self.daily.items()):
            changed = _rounded(counts)
            if changed:
                keys = dict(zip(("project_id", "user_id", "day"), key, strict=True))
                takes = _upsert(conn, DailySummary.__table__, keys, changed, returning="takes")
                added = changed.get("takes", 0)
                if added and takes is not None and takes - added <= 0 < takes:
                    became_active.append(key)  # under the row's lock: exactly one writer sees 0 -> n
        for project, user, _ in became_active:
            self.rollups[(project, user, ALL_DAYS, user % ROLLUP_SLOTS)]["active_days"] += 1
        for rollup_key, counts in sorted(self.rollups.items()):
            changed = _rounded(counts)
            if changed:
                keys = dict(zip(("project_id", "user_id", "day", "slot"), rollup_key, strict=True))
                _upsert(conn, SummaryRollup.__table__, keys, changed)
        for bucket_key, counts in sorted(self.buckets.items()):
            keys = dict(zip(("project_id", "user_id", "day", "bucket"), bucket_key, strict=True))
            _upsert(conn, DurationBucket.__table__, keys, {**counts, "takes": round(counts["takes"])})
        annotator_buckets = sorted(self.annotator_buckets.items())
        if annotator_buckets and not _has_table(conn, AnnotatorDurationBucket.__tablename__):
            annotator_buckets = []  # before migration 0012, which derives them from the rows above
        for (user, bucket), counts in annotator_buckets:
            keys = {"user_id": user, "bucket": bucket}
            _upsert(
                conn, AnnotatorDurationBucket.__table__, keys, {**counts, "takes": round(counts["takes"])}
            )
        for key in became_active:
            _mark_active_day(conn, key)


def derive_annotator_buckets(conn: Connection) -> None:
    """Replaces every annotator's across-projects histogram with the sum of their per-project ones
    (the per-annotator grain of duration_buckets): what a rebuild of one project or a bulk load leaves
    behind, where adding the counted takes again would count the other projects' takes twice."""
    b = DurationBucket
    conn.execute(delete(AnnotatorDurationBucket))
    per_annotator = (
        select(b.user_id, b.bucket, func.sum(b.takes), func.sum(b.seconds))
        .where(b.user_id != ALL_ANNOTATORS, b.day == ALL_DAYS)
        .group_by(b.user_id, b.bucket)
        .having(func.sum(b.takes) != 0)
    )
    columns = ["user_id", "bucket", "takes", "seconds"]
    conn.execute(insert(AnnotatorDurationBucket).from_select(columns, per_annotator))


def _rounded(counts: dict[str, float]) -> dict[str, float]:
    return {c: v if c in FLOAT_COLUMNS else round(v) for c, v in counts.items() if v}


def _mark_active_day(conn: Connection, key: Key) -> None:
    """Marks the day active for the project, for the annotator across projects, and for everyone;
    an annotator's first mark of a day counts the day for them. Takes are never uncounted (only a
    rebuild starts over), so a day once active stays active."""
    project, user, day = key
    for mark in ((ALL_PROJECTS, ALL_ANNOTATORS), (ALL_PROJECTS, user), (project, ALL_ANNOTATORS)):
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(ActiveDay)
            .values(project_id=mark[0], user_id=mark[1], day=day)
            .on_conflict_do_nothing()
            .returning(ActiveDay.day)
        )
        first = conn.execute(statement).first() is not None
        if first and mark == (ALL_PROJECTS, user):
            _upsert(conn, AnnotatorActiveDays.__table__, {"user_id": user}, {"days": 1})


def _upsert(
    conn: Connection,
    table: Any,
    keys: dict[str, Any],
    increments: dict[str, float],
    returning: str | None = None,
) -> Any:
    """Adds `increments` to the row at `keys` (creating it); returns the row's `returning` column after."""
    assert isinstance(table, Table)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**keys, **increments)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={column: table.c[column] + statement.excluded[column] for column in increments},
    )
    if returning is None:
        conn.execute(statement)
        return None
    return conn.execute(statement.returning(table.c[returning])).scalar()


def take_keys(conn: Connection, recording_ids: Iterable[int]) -> dict[int, Key]:
    """Each take's summary key: its project, annotator and the day it was recorded."""
    ids = sorted(set(recording_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(Recording.id, Recording.project_id, Recording.user_id, Recording.created_at).where(
            Recording.id.in_(ids)
        )
    )
    return {rid: (project, user, day_of(as_utc(created))) for rid, project, user, created in rows}


def takes_died(session: Session, recording_ids: Iterable[int]) -> None:
    """Counts takes the queue failed with a bulk UPDATE (the ORM hook never sees those)."""
    conn = session.connection()
    if not _has_summaries(conn):
        return
    tally = Tally()
    for key in take_keys(conn, recording_ids).values():
        tally.add(key, failed_takes=1)
    tally.write(conn)


def images_changed(session: Session, project_id: int, slot: int, images: int = 0, complete: int = 0) -> None:
    """Counts images added (ingest's bulk insert) or completed (intake's done_count UPDATE)."""
    if (images or complete) and _has_summaries(session.connection()):
        keys = {"project_id": project_id, "slot": slot % IMAGE_COUNT_SLOTS}
        _upsert(
            session.connection(), ImageCount.__table__, keys, {"images": images, "images_complete": complete}
        )


def _count_image(conn: Connection, obj: Image, new: bool) -> None:
    per_image = conn.scalar(select(Project.per_image).where(Project.id == obj.project_id)) or 1
    if new:
        was_complete = False
    else:
        change = get_history(obj, "done_count")
        if not change.added or not change.deleted:
            return
        was_complete = change.deleted[0] >= per_image
    complete = int(obj.done_count >= per_image) - int(was_complete)
    if new or complete:
        keys = {"project_id": obj.project_id, "slot": obj.id % IMAGE_COUNT_SLOTS}
        _upsert(conn, ImageCount.__table__, keys, {"images": int(new), "images_complete": complete})


def as_utc(value: Any) -> datetime:
    # Rows read through Core on SQLite come back as naive UTC datetimes.
    from db.models import UTCDateTime

    result = UTCDateTime().process_result_value(value, None)
    assert result is not None
    return result


def _status_change(obj: Any, attribute: str) -> tuple[Any, Any] | None:
    history = get_history(obj, attribute)
    if not history.added or not history.deleted:
        return None
    return history.deleted[0], history.added[0]


def caption_key(conn: Connection, recording_id: int | None, image_id: int, created_at: datetime) -> Key:
    """A caption counts with its take; one merged from several takes with its image's project only."""
    if recording_id is not None:
        key = take_keys(conn, [recording_id]).get(recording_id)
        if key is not None:
            return key
    project_id = conn.scalar(select(Image.project_id).where(Image.id == image_id))
    return (int(project_id or 0), NO_ANNOTATOR, day_of(created_at))


def _count_caption(conn: Connection, tally: Tally, caption: Caption, status: Any, sign: int) -> None:
    key = caption_key(conn, caption.recording_id, caption.image_id, caption.created_at)
    tally.add(key, sign, **caption_state_counts(status, caption.flagged, caption.word_count))


def _count_review(conn: Connection, tally: Tally, review: Review) -> None:
    """A caption counts its last decision only: a new review replaces the one before it."""
    caption = conn.execute(
        select(Caption.id, Caption.recording_id, Caption.image_id, Caption.created_at).where(
            Caption.id == review.caption_id
        )
    ).one()
    project_id, user_id, _ = caption_key(
        conn, caption.recording_id, caption.image_id, as_utc(caption.created_at)
    )
    previous = conn.execute(
        select(Review.decision, Review.created_at)
        .where(Review.caption_id == review.caption_id, Review.id < review.id)
        .order_by(Review.id.desc())
        .limit(1)
    ).first()
    if previous is not None:
        column = DECISION_COLUMN[ReviewDecision(previous.decision)]
        tally.add((project_id, user_id, day_of(as_utc(previous.created_at))), **{column: -1})
    tally.add((project_id, user_id, day_of(review.created_at)), **{DECISION_COLUMN[review.decision]: 1})


_ENGINES_WITH: dict[str, weakref.WeakSet[Engine]] = defaultdict(weakref.WeakSet)


def _has_table(conn: Connection, name: str) -> bool:
    """Whether this database has a summary table yet: a database still at an older migration (the
    migration tests build one) has nothing to count into. Only a yes is remembered."""
    if conn.engine in _ENGINES_WITH[name]:
        return True
    if not inspect(conn).has_table(name):
        return False
    _ENGINES_WITH[name].add(conn.engine)
    return True


def _has_summaries(conn: Connection) -> bool:
    # The newest of the summary tables: a database without it (before 0009) counts nothing, and
    # `voicecap stats rebuild` after its upgrade counts everything.
    return _has_table(conn, SummaryRollup.__tablename__)


FIGURE_ATTRIBUTES = {
    Recording: ("duration_seconds", "loudness_dbfs", "silence_fraction", "meta", "project_id", "user_id"),
    Transcript: ("revision", "word_count", "words_per_minute"),
    Caption: ("status", "word_count", "faithfulness"),
}


def _changed_takes(conn: Connection, session: Session) -> set[int]:
    """Takes whose QC figures or flags this flush may have changed."""
    touched: set[int] = set()
    for obj in session.new:
        if isinstance(obj, Recording):
            touched.add(obj.id)
        elif isinstance(obj, Transcript | Caption) and obj.recording_id is not None:
            touched.add(obj.recording_id)
    for obj in session.dirty:
        attributes = FIGURE_ATTRIBUTES.get(type(obj), ())
        if any(get_history(obj, a).has_changes() for a in attributes):
            touched.add(obj.id if isinstance(obj, Recording) else obj.recording_id)
        elif isinstance(obj, Project):
            touched.update(_takes_near_new_limits(conn, obj))
    touched.discard(None)  # type: ignore[arg-type]
    return touched


def _takes_near_new_limits(conn: Connection, project: Project) -> list[int]:
    low, high = get_history(project, "min_seconds"), get_history(project, "max_seconds")
    if not (low.deleted or high.deleted):
        return []
    before = take_qc.Limits(
        low.deleted[0] if low.deleted else project.min_seconds,
        high.deleted[0] if high.deleted else project.max_seconds,
    )
    after = take_qc.Limits(project.min_seconds, project.max_seconds)
    return take_qc.takes_near_limits(conn, project.id, before, after)


def count_flush(session: Session, flush_context: UOWTransaction) -> None:
    """The after_flush hook: counts what this flush inserted or changed."""
    tally = Tally()
    conn = session.connection()
    if not _has_summaries(conn):
        return
    for obj in sorted(session.new, key=lambda o: (type(o).__name__, getattr(o, "id", 0) or 0)):
        if isinstance(obj, Recording):
            tally.add_take(
                (obj.project_id, obj.user_id, day_of(obj.created_at)), obj.duration_seconds, obj.status
            )
        elif isinstance(obj, Caption):
            _count_caption(conn, tally, obj, obj.status, 1)
        elif isinstance(obj, Review):
            _count_review(conn, tally, obj)
        elif isinstance(obj, Image):
            _count_image(conn, obj, new=True)
        elif isinstance(obj, Assignment) and obj.status == AssignmentStatus.skipped:
            tally.add((obj.project_id, obj.user_id, day_of(obj.updated_at)), skips=1)
    for obj in session.dirty:
        _count_change(conn, tally, obj)
    tally.write(conn)
    if _has_table(conn, TakeFigures.__tablename__):
        changed = _changed_takes(conn, session)
        if changed:
            take_qc.refresh(conn, changed)


def _count_change(conn: Connection, tally: Tally, obj: Any) -> None:
    if isinstance(obj, Image):
        _count_image(conn, obj, new=False)
    elif isinstance(obj, Project) and get_history(obj, "per_image").deleted:
        recount_complete_images(conn, obj.id)
    elif isinstance(obj, Recording):
        change = _status_change(obj, "status")
        if change:
            key = (obj.project_id, obj.user_id, day_of(obj.created_at))
            tally.add(key, -1, **take_state_counts(change[0]))
            tally.add(key, 1, **take_state_counts(change[1]))
    elif isinstance(obj, Caption):
        change = _status_change(obj, "status")
        if change:
            _count_caption(conn, tally, obj, change[0], -1)
            _count_caption(conn, tally, obj, change[1], 1)
    elif isinstance(obj, Assignment):
        change = _status_change(obj, "status")
        if change and (change[0] == AssignmentStatus.skipped) != (change[1] == AssignmentStatus.skipped):
            sign = 1 if change[1] == AssignmentStatus.skipped else -1
            tally.add((obj.project_id, obj.user_id, day_of(obj.updated_at)), sign, skips=1)


def install() -> None:
    """Counts every ORM flush of every session (idempotent)."""
    if not event.contains(Session, "after_flush", count_flush):
        event.listen(Session, "after_flush", count_flush)


def recount_complete_images(conn: Connection, project_id: int) -> None:
    """After per_image changed: which images are complete changes for the whole project (one scan)."""
    slot = Image.id % IMAGE_COUNT_SLOTS
    counts = conn.execute(
        select(slot, func.count())
        .join(Project, Project.id == Image.project_id)
        .where(Image.project_id == project_id, Image.done_count >= Project.per_image)
        .group_by(slot)
    ).all()
    conn.execute(update(ImageCount).where(ImageCount.project_id == project_id).values(images_complete=0))
    for slot_value, count in counts:
        _upsert(
            conn,
            ImageCount.__table__,
            {"project_id": project_id, "slot": slot_value},
            {"images_complete": count},
        )
