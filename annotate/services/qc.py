"""Automatic quality control: each take's figures, flags, and outliers per annotator, from summaries.

Never reads every take. Each take's current figures are a `take_figures` row and its rule flags (judged
when it was measured or changed, plus what the stages put in meta["qc_flags"]) are `qc_flags` rows, both
kept by db.take_qc. A project's centre and spread per metric (median and 1.4826·MAD, robust: a few wild
takes cannot hide each other) and each annotator's medians come from the metric histograms; a take is an
outlier when its robust z against its project is 3.5 or more, and the takes beyond those thresholds are
found by index ranges on `take_figures`. So a report reads the histograms (a few thousand rows), one page
of takes, and the flagged or outlying takes it counts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, and_, false, func, literal_column, or_, select, union
from sqlalchemy.orm import Session

from annotate.errors import InvalidInput
from db.models import Recording, User
from db.settings import Settings
from db.summary_models import (
    ALL_ANNOTATORS,
    ALL_DAYS,
    ANY_STORED_FLAG,
    Z_METRICS,
    MetricBucket,
    QcFlag,
    QcFlagCount,
    SummaryRollup,
    TakeFigures,
)

# |robust z| at or above this is an outlier (Iglewicz and Hoaglin's usual cut-off).
OUTLIER_Z = 3.5
FIGURES = (
    "duration_seconds",
    "loudness_dbfs",
    "silence_fraction",
    "words_per_minute",
    "transcript_words",
    "caption_words",
    "faithfulness",
)
RULE_FLAGS = ["too_short", "too_long", "mostly_silent", "quiet", "unfaithful"]
OUTLIER_FLAGS = [f"outlier_{metric}_{side}" for metric in Z_METRICS for side in ("high", "low")]
# Every flag a take can carry, for filter menus (count_mismatch: pointing takes, set in the take's meta).
QC_FLAGS = [*RULE_FLAGS, "count_mismatch", *OUTLIER_FLAGS]
TAKE_COLUMNS = [
    "recording_id",
    "project_id",
    "image_id",
    "annotator",
    "status",
    "created_at",
    *FIGURES,
    "caption_id",
    "flags",
]
MAX_PAGE = 5000


@dataclass
class QcFilter:
    project_id: int | None = None
    annotator_id: int | None = None
    flag: str | None = None  # a flag name, or "any" for takes with at least one flag
    limit: int = 500


@dataclass(frozen=True)
class Spread:
    center: float
    scale: float  # NaN: no spread, so nothing is an outlier

    def z(self, value: float | None) -> float:
        if value is None or math.isnan(self.scale) or math.isnan(value):
            return 0.0
        return (value - self.center) / self.scale

    def bounds(self) -> tuple[float, float] | None:
        if math.isnan(self.scale):
            return None
        return self.center - OUTLIER_Z * self.scale, self.center + OUTLIER_Z * self.scale


Histogram = list[tuple[int, int, float]]  # bucket, takes, sum of values


def query_frame(session: Session, query: Any) -> pd.DataFrame:
    """A query's rows as a frame, through Core: ORM row handling costs seconds per 100k rows."""
    result = session.connection().execute(query)
    columns = list(result.keys())
    return pd.DataFrame.from_records([tuple(row) for row in result], columns=columns)


def center_scale(values: pd.Series) -> tuple[float, float]:
    """The median, and a robust spread: 1.4826·MAD, or 1.2533·mean absolute deviation when over half
    the values tie (NaN when there is no spread at all)."""
    values = values.dropna()
    if values.empty:
        return math.nan, math.nan
    median = float(values.median())
    deviation = (values - median).abs()
    mad = float(deviation.median())
    if mad > 0:
        return median, 1.4826 * mad
    mean_ad = float(deviation.mean())
    return median, (1.2533 * mean_ad if mean_ad > 0 else math.nan)


def robust_z(values: pd.Series, reference: pd.Series) -> pd.Series:
    """Robust z-scores of `values` against the distribution of `reference` (0 where it has no spread)."""
    center, scale = center_scale(reference)
    if math.isnan(scale):
        return pd.Series(0.0, index=values.index)
    return (values - center) / scale


def weighted_median(points: list[tuple[float, int]]) -> float:
    """The median of values given with their counts (the mean of the two middle ones for an even total)."""
    points = sorted(p for p in points if p[1] > 0)
    total = sum(n for _, n in points)
    if not total:
        return math.nan
    middle = [(total - 1) // 2, total // 2]
    found: list[float] = []
    seen = 0
    for value, n in points:
        found += [value for position in middle if seen <= position < seen + n]
        seen += n
    return sum(found) / len(found)


def histogram_spread(histogram: Histogram) -> Spread:
    """center_scale from a histogram, each bucket's takes standing at the bucket's mean."""
    points = [(total / n, n) for _, n, total in histogram if n > 0]
    median = weighted_median(points)
    if math.isnan(median):
        return Spread(math.nan, math.nan)
    deviations = [(abs(value - median), n) for value, n in points]
    mad = weighted_median(deviations)
    if mad > 0:
        return Spread(median, 1.4826 * mad)
    mean_ad = sum(d * n for d, n in deviations) / sum(n for _, n in deviations)
    return Spread(median, 1.2533 * mean_ad if mean_ad > 0 else math.nan)


def _histograms(
    session: Session, project_id: int | None, per_annotator: bool
) -> dict[tuple[int, int, str], Histogram]:
    b = MetricBucket
    query = select(b.project_id, b.user_id, b.metric, b.bucket, b.takes, b.total).where(
        b.user_id != ALL_ANNOTATORS if per_annotator else b.user_id == ALL_ANNOTATORS, b.takes > 0
    )
    if project_id is not None:
        query = query.where(b.project_id == project_id)
    histograms: dict[tuple[int, int, str], Histogram] = defaultdict(list)
    for project, user, metric, bucket, takes, total in session.connection().execute(query):
        histograms[(project, user, metric)].append((bucket, int(takes), float(total)))
    return histograms


def project_spreads(session: Session, project_id: int | None) -> dict[tuple[int, str], Spread]:
    """Each project's centre and spread per metric, from its histograms."""
    return {
        (project, metric): histogram_spread(histogram)
        for (project, _, metric), histogram in _histograms(session, project_id, False).items()
    }


def _outlier_condition(spreads: dict[tuple[int, str], Spread], metric: str, side: str) -> Any:
    """Takes beyond their project's threshold on one metric and side: an index range per project
    (None when no project has a spread on it)."""
    column = getattr(TakeFigures, metric)
    ranges = []
    for (project, name), spread in spreads.items():
        bounds = spread.bounds()
        if name != metric or bounds is None:
            continue
        beyond = column >= bounds[1] if side == "high" else column <= bounds[0]
        ranges.append(and_(TakeFigures.project_id == project, beyond))
    return or_(*ranges) if ranges else None


def _outlier_ranges(f: QcFilter, spreads: dict[tuple[int, str], Spread]) -> list[Any]:
    """Selects of the ids of the takes in scope beyond each threshold, to be united: one index range
    each (one OR over all of them would let the planner read every take instead)."""
    conditions = [_outlier_condition(spreads, m, side) for m in Z_METRICS for side in ("high", "low")]
    ranges = [
        _scope(select(TakeFigures.recording_id).where(c), TakeFigures, f) for c in conditions if c is not None
    ]
    return ranges or [select(TakeFigures.recording_id).where(false())]


def _scope(query: Select[Any], table: Any, f: QcFilter) -> Select[Any]:
    if f.project_id is not None:
        query = query.where(table.project_id == f.project_id)
    if f.annotator_id is not None:
        query = query.where(table.user_id == f.annotator_id)
    return query


def _flagged_ids(f: QcFilter, spreads: dict[tuple[int, str], Spread]) -> Any:
    """A select of the ids of the takes in scope carrying f.flag (stored, outlier, or any)."""
    flag = f.flag or "any"
    if flag.startswith("outlier_"):
        metric, side = flag.removeprefix("outlier_").rsplit("_", 1)
        where = _outlier_condition(spreads, metric, side)
        return _scope(
            select(TakeFigures.recording_id).where(false() if where is None else where), TakeFigures, f
        )
    stored = _scope(select(QcFlag.recording_id), QcFlag, f)
    if flag != "any":
        return stored.where(QcFlag.flag == flag)
    return union(stored, *_outlier_ranges(f, spreads))


def _check_flag(flag: str | None) -> None:
    if flag and flag != "any" and flag not in QC_FLAGS:
        raise InvalidInput(f"Unknown QC flag {flag!r}; use any or one of {', '.join(QC_FLAGS)}.")


def _page(session: Session, f: QcFilter, spreads: dict[tuple[int, str], Spread]) -> tuple[list[int], int]:
    """The first `limit` ids (by id) of the takes the filter keeps, and how many it keeps."""
    limit = max(1, min(f.limit, MAX_PAGE))
    if not f.flag:
        ids = _scope(select(TakeFigures.recording_id), TakeFigures, f).order_by(TakeFigures.recording_id)
        return list(session.scalars(ids.limit(limit))), _take_count(session, f)
    flagged = _flagged_ids(f, spreads).subquery()
    rid = flagged.c.recording_id
    rows = session.execute(
        select(rid, func.count().over()).select_from(flagged).order_by(rid).limit(limit)
    ).all()
    return [int(r[0]) for r in rows], int(rows[0][1]) if rows else 0


def _take_count(session: Session, f: QcFilter) -> int:
    r = SummaryRollup
    query = select(func.coalesce(func.sum(r.takes), 0)).where(r.day == ALL_DAYS)
    if f.annotator_id is not None:
        query = query.where(r.user_id == f.annotator_id)
    else:
        query = query.where(r.user_id == ALL_ANNOTATORS)
    if f.project_id is not None:
        query = query.where(r.project_id == f.project_id)
    return int(session.scalar(query) or 0)


def _takes(session: Session, ids: list[int], spreads: dict[tuple[int, str], Spread]) -> list[dict[str, Any]]:
    """The page's takes with their figures, stored flags and outlier flags."""
    if not ids:
        return []
    t = TakeFigures
    rows = session.execute(
        select(
            t.recording_id,
            t.project_id,
            Recording.image_id,
            User.name.label("annotator"),
            Recording.status,
            Recording.created_at,
            *[getattr(t, c) for c in FIGURES],
            t.caption_id,
        )
        .join(Recording, Recording.id == t.recording_id)
        .join(User, User.id == t.user_id)
        .where(t.recording_id.in_(ids))
        .order_by(t.recording_id)
    ).all()
    stored: dict[int, list[str]] = defaultdict(list)
    for rid, flag in session.execute(
        select(QcFlag.recording_id, QcFlag.flag).where(QcFlag.recording_id.in_(ids)).order_by(QcFlag.flag)
    ):
        stored[rid].append(flag)
    takes = []
    for row in rows:
        take = dict(row._mapping)
        take["status"] = getattr(take["status"], "value", take["status"])
        take["flags"] = _ordered(stored[take["recording_id"]]) + _outliers_of(take, spreads)
        takes.append({k: _clean(take.get(k)) for k in TAKE_COLUMNS})
    return takes


def _ordered(flags: list[str]) -> list[str]:
    known = [f for f in QC_FLAGS if f in flags]
    return known + sorted(set(flags) - set(known))


def _outliers_of(take: dict[str, Any], spreads: dict[tuple[int, str], Spread]) -> list[str]:
    flags = []
    for metric in Z_METRICS:
        spread = spreads.get((take["project_id"], metric))
        value = take.get(metric)
        if spread is None or value is None:
            continue
        z = spread.z(float(value))
        if z >= OUTLIER_Z:
            flags.append(f"outlier_{metric}_high")
        elif z <= -OUTLIER_Z:
            flags.append(f"outlier_{metric}_low")
    return flags


def flag_counts(session: Session, f: QcFilter, spreads: dict[tuple[int, str], Spread]) -> dict[str, int]:
    """Takes per flag in scope: stored flags from their counts, outliers by index range counts."""
    c = QcFlagCount
    stored = _scope(select(c.flag, func.sum(c.takes)), c, f).where(c.flag != ANY_STORED_FLAG)
    counts = {flag: int(n) for flag, n in session.execute(stored.group_by(c.flag)) if n}
    for metric in Z_METRICS:
        for side in ("high", "low"):
            where = _outlier_condition(spreads, metric, side)
            if where is None:
                continue
            query = _scope(select(func.count()).select_from(TakeFigures).where(where), TakeFigures, f)
            n = int(session.scalar(query) or 0)
            if n:
                counts[f"outlier_{metric}_{side}"] = n
    return dict(sorted(counts.items()))


def annotator_summary(
    session: Session, f: QcFilter, spreads: dict[tuple[int, str], Spread]
) -> list[dict[str, Any]]:
    """Per project and annotator: takes, flagged takes, medians, and each median's robust z against
    the project (medians from the annotator's histograms)."""
    r = SummaryRollup
    people = _scope(
        select(r.project_id, r.user_id, User.name, func.sum(r.takes))
        .join(User, User.id == r.user_id)
        .where(r.day == ALL_DAYS, r.user_id != ALL_ANNOTATORS),
        r,
        f,
    ).group_by(r.project_id, r.user_id, User.name)
    takes = {(p, u): (name, int(n)) for p, u, name, n in session.execute(people) if n}
    flagged = _flagged_per_annotator(session, f, spreads)
    medians = annotator_medians(session, f)
    rows = []
    for (project, user), (name, count) in sorted(takes.items()):
        row: dict[str, Any] = {
            "project_id": project,
            "user_id": user,
            "annotator": name,
            "takes": count,
            "flagged_takes": flagged.get((project, user), 0),
        }
        outliers = []
        for metric in Z_METRICS:
            median = medians.get((project, user, metric), math.nan)
            spread = spreads.get((project, metric))
            z = spread.z(median) if spread is not None and not math.isnan(median) else 0.0
            row[f"median_{metric}"] = None if math.isnan(median) else round(median, 4)
            row[f"z_{metric}"] = round(z, 2)
            if abs(z) >= OUTLIER_Z:
                outliers.append(f"{metric}_{'high' if z > 0 else 'low'}")
        row["outliers"] = outliers
        rows.append(row)
    return rows


def annotator_medians(session: Session, f: QcFilter) -> dict[tuple[int, int, str], float]:
    """Each annotator's median per metric from their histogram, each bucket's takes standing at its mean.
    The database finds the bucket(s) holding the middle position(s) with running sums, so only those
    come back (at most two rows per annotator and metric, however many buckets they have)."""
    b = MetricBucket
    partition = (b.project_id, b.user_id, b.metric)
    upto = func.sum(b.takes).over(partition_by=partition, order_by=b.bucket).label("upto")
    n = func.sum(b.takes).over(partition_by=partition).label("n")
    running = _scope(
        select(*partition, b.takes, b.total, upto, n).where(b.user_id != ALL_ANNOTATORS, b.takes > 0), b, f
    ).subquery()
    r = running.c
    # Positions upto - takes .. upto - 1 (0-based) hold the middle ones, (n - 1) / 2 and n / 2.
    middle = select(r.project_id, r.user_id, r.metric, r.takes, r.total, r.upto, r.n).where(
        r.upto - r.takes <= r.n / 2, r.upto - 1 >= (r.n - 1) / 2
    )
    found: dict[tuple[int, int, str], list[float]] = defaultdict(list)
    for project, user, metric, takes, total, upto, count in session.execute(middle):
        start, mean = int(upto) - int(takes), float(total) / int(takes)
        for position in {(int(count) - 1) // 2, int(count) // 2}:
            if start <= position < int(upto):
                found[(project, user, metric)].append(mean)
    return {key: sum(values) / len(values) for key, values in found.items()}


def _flagged_per_annotator(
    session: Session, f: QcFilter, spreads: dict[tuple[int, str], Spread]
) -> dict[tuple[int, int], int]:
    """Takes with a stored flag (counted) plus outlying takes without one (an index range each)."""
    c = QcFlagCount
    stored = _scope(select(c.project_id, c.user_id, c.takes), c, f).where(c.flag == ANY_STORED_FLAG)
    flagged = {(p, u): int(n) for p, u, n in session.execute(stored)}
    has_stored = select(literal_column("1")).where(QcFlag.recording_id == TakeFigures.recording_id).exists()
    t = TakeFigures
    ids = union(*_outlier_ranges(f, spreads)).subquery()
    outlying = (
        select(t.project_id, t.user_id, func.count())
        .join(ids, ids.c.recording_id == t.recording_id)
        .where(~has_stored)
        .group_by(t.project_id, t.user_id)
    )
    for p, u, n in session.execute(outlying):
        flagged[(p, u)] = flagged.get((p, u), 0) + int(n)
    return flagged


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def records(frame: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN as null, numpy scalars as Python numbers."""
    if frame.empty:
        return []
    frame = frame[columns] if columns else frame
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def qc_report(session: Session, settings: Settings, f: QcFilter) -> dict[str, Any]:
    """Takes with their QC flags (filtered, one page) and the per-annotator outlier summary."""
    _check_flag(f.flag)
    spreads = project_spreads(session, f.project_id)
    ids, total = _page(session, f, spreads)
    return {
        "takes": _takes(session, ids, spreads),
        "annotators": annotator_summary(session, f, spreads),
        "total": total,
        "flag_counts": flag_counts(session, f, spreads),
    }


def recordings_with_flag(
    session: Session, settings: Settings, flag: str, project_id: int | None = None
) -> list[int]:
    """Ids of the takes carrying a QC flag (or any flag, for `any`), for the review queue's filter."""
    _check_flag(flag)
    f = QcFilter(project_id=project_id, flag=flag)
    flagged = _flagged_ids(f, project_spreads(session, project_id)).subquery()
    return sorted(int(i) for i in session.scalars(select(flagged.c.recording_id)))
