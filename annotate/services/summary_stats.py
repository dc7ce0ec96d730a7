"""The dashboard's grouped figures read from the summary roll-ups: a few thousand rows, whatever the takes.

Same columns and meaning as the pandas computation over every take (annotate.services.stats.compute),
with two documented differences: the median take length comes from ~5%-wide buckets (each bucket's mean
stands for its takes), and images done counts live takes (one per image and annotator, as assignments
are) rather than distinct images.

Plain dicts all the way (no pandas on this path): a call reads one grouped row per key, the middle
bucket(s) of each key's histogram and its active days, and finishes the rates in Python. The values
are those stats.finish and qc.records give the same counts (rounded to 4 places, NaN as None).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Integer, Select, cast, func, literal, select
from sqlalchemy.orm import Session

from db.models import Project, User
from db.summary_models import (
    ALL_ANNOTATORS,
    ALL_DAYS,
    ALL_PROJECTS,
    ActiveDay,
    AnnotatorActiveDays,
    AnnotatorDurationBucket,
    DurationBucket,
    SummaryRollup,
)

SUMMED = (
    "takes",
    "audio_seconds",
    "failed_takes",
    "rejected_takes",
    "captions_pending",
    "captions_approved",
    "captions_rejected",
    "caption_words",
    "approved",
    "rejected",
    "sent_back",
)
COLUMNS = [
    "images_done",
    "takes",
    "audio_hours",
    "median_seconds_per_take",
    "captions",
    "words_per_caption",
    "reviewed",
    "approved",
    "rejected",
    "sent_back",
    "approval_rate",
    "rejection_rate",
    "takes_per_day",
]
Row = dict[str, Any]


def grouped_rows(session: Session, project_id: int | None, by: str) -> list[Row]:
    """One finished row per key (project name, annotator name, day or "all"), sorted by key; by day,
    every day between the first and the last, quiet ones as zero."""
    counts = _counts(session, project_id, by)
    if not counts:
        return []
    medians = _medians(session, project_id, by)
    if by == "annotator" and project_id is not None:
        active = {key: int(c.pop("active_days")) for key, c in counts.items()}
    else:
        active = _active_days(session, project_id, by)
    rows = {key: _row(c, medians.get(key), active.get(key, 0)) for key, c in counts.items()}
    if by == "day":
        rows = _fill_days(rows)
    return [{"key": key, **rows[key]} for key in sorted(rows)]


def totals(session: Session, project_id: int | None) -> Row:
    """The same columns over the project (or all projects), without the key."""
    rows = grouped_rows(session, project_id, "all")
    if not rows:
        return dict.fromkeys(COLUMNS, 0)
    return {k: v for k, v in rows[0].items() if k != "key"}


def _key_column(table: Any, by: str) -> Any:
    if by == "project":
        return Project.name
    if by == "annotator":
        return User.name
    if by == "day":
        return table.day
    return literal("all")


def _grouped(query: Select[Any], table: Any, by: str, project_id: int | None) -> Select[Any]:
    if by in ("project", "all"):
        query = query.join(Project, Project.id == table.project_id)
    elif by == "annotator":
        query = query.join(User, User.id == table.user_id)
    if project_id is not None:
        query = query.where(table.project_id == project_id)
    return query if by == "all" else query.group_by(_key_column(table, by))


def _grain(table: Any, by: str) -> list[Any]:
    """The rows a grouping reads: per annotator, per day, or per project (summed over slots). Written
    as ranges (ALL_ANNOTATORS and ALL_DAYS sort before every annotator id and day) so an index's
    range, not a filter over every row of the project, finds them."""
    per_annotator = table.user_id > ALL_ANNOTATORS if by == "annotator" else table.user_id == ALL_ANNOTATORS
    per_day = table.day > ALL_DAYS if by == "day" else table.day == ALL_DAYS
    return [per_annotator, per_day]


def _counts(session: Session, project_id: int | None, by: str) -> dict[Any, dict[str, Any]]:
    """The summed counts per key, leaving out keys that count nothing (by annotator within a project,
    with the annotators' active days in the same read)."""
    r = SummaryRollup
    summed = [func.sum(getattr(r, c)).label(c) for c in SUMMED]
    if by == "annotator" and project_id is not None:
        summed.append(func.sum(r.active_days).label("active_days"))
    query = select(_key_column(r, by).label("key"), *summed).where(*_grain(r, by))
    counts: dict[Any, dict[str, Any]] = {}
    for key, *values in session.execute(_grouped(query, r, by, project_id)):
        sums = dict(zip(SUMMED, (v or 0 for v in values), strict=False))
        if any(sums.values()):
            counts[key] = {**sums, "active_days": values[-1] or 0} if len(values) > len(SUMMED) else sums
    return counts


def _row(c: dict[str, Any], median: float | None, active_days: int) -> Row:
    captions = int(c["captions_pending"] + c["captions_approved"] + c["captions_rejected"])
    approved, rejected, sent_back = int(c["approved"]), int(c["rejected"]), int(c["sent_back"])
    reviewed = approved + rejected + sent_back
    takes = int(c["takes"])
    return {
        "images_done": int(takes - c["failed_takes"] - c["rejected_takes"]),
        "takes": takes,
        "audio_hours": _number(float(c["audio_seconds"]) / 3600.0),
        "median_seconds_per_take": _number(median),
        "captions": captions,
        "words_per_caption": _ratio(int(c["caption_words"]), captions),
        "reviewed": reviewed,
        "approved": approved,
        "rejected": rejected,
        "sent_back": sent_back,
        "approval_rate": _ratio(approved, reviewed),
        "rejection_rate": _ratio(rejected, reviewed),
        "takes_per_day": _ratio(takes, active_days),
    }


def _number(value: float | None) -> float | None:
    """As qc.records writes a float: rounded to 4 places, NaN (no value) as None."""
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _ratio(part: int, whole: int) -> float | None:
    return _number(part / whole) if whole > 0 else None


def _fill_days(rows: dict[Any, Row]) -> dict[Any, Row]:
    """Every day between the first and last, so a chart shows quiet days as zero; by day a row's takes
    per day are its takes."""
    first, last = date.fromisoformat(min(rows)), date.fromisoformat(max(rows))
    quiet = dict.fromkeys(COLUMNS, 0) | {
        "audio_hours": 0.0,
        "median_seconds_per_take": None,
        "words_per_caption": None,
        "approval_rate": None,
        "rejection_rate": None,
    }
    filled: dict[Any, Row] = {}
    for offset in range((last - first).days + 1):
        day = (first + timedelta(days=offset)).isoformat()
        row = rows.get(day, quiet)
        filled[day] = {**row, "takes_per_day": float(row["takes"])}
    return filled


def _active_days(session: Session, project_id: int | None, by: str) -> dict[Any, int]:
    """Days with takes per key: read per annotator across projects, or from the day marks (per project:
    at most a few thousand rows). By day it is not used (a day is its own day)."""
    if by == "day":
        return {}
    if by == "annotator":
        across = select(User.name, AnnotatorActiveDays.days).join(
            User, User.id == AnnotatorActiveDays.user_id
        )
        return {name: int(days) for name, days in session.execute(across)}
    a = ActiveDay
    if by == "all":
        scope = ALL_PROJECTS if project_id is None else project_id
        count = session.scalar(
            select(func.count()).select_from(a).where(a.project_id == scope, a.user_id == ALL_ANNOTATORS)
        )
        return {"all": int(count or 0)}
    per_project = (
        select(Project.name, func.count())
        .select_from(a)
        .join(Project, Project.id == a.project_id)
        .where(a.user_id == ALL_ANNOTATORS)
        .group_by(Project.name)
    )
    if project_id is not None:
        per_project = per_project.where(a.project_id == project_id)
    return {name: int(days) for name, days in session.execute(per_project)}


def _medians(session: Session, project_id: int | None, by: str) -> dict[Any, float]:
    """Each key's median from its histogram (summed over the key's rows), each bucket's takes standing
    at the bucket's mean. Running sums in the database find the bucket(s) holding the middle
    position(s), so at most two rows per key come back, however many buckets it has."""
    h = _histograms(project_id, by).subquery()
    upto = func.sum(h.c.takes).over(partition_by=h.c.key, order_by=h.c.bucket).label("upto")
    n = func.sum(h.c.takes).over(partition_by=h.c.key).label("n")
    running = select(h.c.key, h.c.takes, h.c.seconds, upto, n).where(h.c.takes != 0).subquery()
    r = running.c
    # A bucket holds positions upto - takes .. upto - 1 (0-based); the middle ones are (n - 1) // 2 and
    # n // 2. Compared doubled, so the test is exact whether the sums come back whole or numeric.
    middle = select(r.key, r.takes, r.seconds, r.upto, r.n).where(
        2 * (r.upto - r.takes) <= r.n, 2 * r.upto >= r.n
    )
    found: dict[Any, list[float]] = defaultdict(list)
    for key_id, takes, seconds, upto, count in session.execute(middle.order_by(r.key, r.upto)):
        start, end, total = int(upto) - int(takes), int(upto), int(count)
        for position in ((total - 1) // 2, total // 2):
            if start <= position < end:
                found[key_id].append(float(seconds) / int(takes))
    names = _names(session, by, found)
    return {names[key_id]: sum(values) / len(values) for key_id, values in found.items() if key_id in names}


def _histograms(project_id: int | None, by: str) -> Select[Any]:
    """Each key's histogram, one row per key and bucket: key, bucket, takes, seconds. Keyed by id (or
    day) and named at the end, since grouping and sorting thousands of names costs more than the read;
    whole-number sums (int, not numeric) keep the running sums cheap on PostgreSQL."""
    if by == "annotator" and project_id is None:
        a = AnnotatorDurationBucket  # one histogram per annotator, not one per project and annotator
        return select(a.user_id.label("key"), a.bucket, a.takes, a.seconds)
    b = DurationBucket
    key = {"project": b.project_id, "annotator": b.user_id, "day": b.day}.get(by, literal(0))
    histogram = select(
        key.label("key"),
        b.bucket.label("bucket"),
        cast(func.sum(b.takes), Integer).label("takes"),
        func.sum(b.seconds).label("seconds"),
    ).where(*_grain(b, by))
    if project_id is not None:
        histogram = histogram.where(b.project_id == project_id)
    return histogram.group_by(*([] if by == "all" else [key]), b.bucket)


def _names(session: Session, by: str, ids: Iterable[Any]) -> dict[Any, Any]:
    """The keys' names for their ids (a project's or annotator's name; a day and "all" are their own)."""
    if by == "day":
        return {day: day for day in ids}
    if by not in ("project", "annotator"):
        return dict.fromkeys(ids, "all")
    table = Project if by == "project" else User
    named = select(table.id, table.name).where(table.id.in_(list(ids)))
    return {key_id: name for key_id, name in session.execute(named)}


def median_of(histogram: list[tuple[int, int, float]]) -> float:
    """The median of bucketed values (bucket, takes, seconds), each bucket's takes standing at the
    bucket's mean: what _medians finds in the database, for tests to check it against."""
    total = sum(n for _, n, _ in histogram)
    middle = [(total - 1) // 2, total // 2]  # the one or two middle positions (0-based)
    values: list[float] = []
    seen = 0
    for _, n, seconds in sorted(histogram):
        for position in middle:
            if seen <= position < seen + n:
                values.append(seconds / n)
        seen += n
    return sum(values) / len(values)
