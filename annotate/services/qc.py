"""Automatic quality control: each take's figures, flags, and outliers per annotator, from summaries.

Never reads every take. Each take's current figures are a `take_figures` row and its rule flags (judged
when it was measured or changed, plus what the stages put in meta["qc_flags"]) are `qc_flags` rows, both
kept by db.take_qc. A project's centre and spread per metric (median and 1.4826·MAD, robust: a few wild
takes cannot hide each other) come from the project's metric histograms, each annotator's medians from the
bucket `qc_medians` points at; a take is an outlier when its robust z against its project is 3.5 or more,
and the takes beyond those thresholds are found by index ranges on `take_figures`. Totals come from
`qc_flag_counts`, a filtered page from index-ordered ranges of `qc_flags`. So a report reads the
histograms (a few thousand rows), one page of takes and the outlying takes, never the flagged ones.
"""

from __future__ import annotations

import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import (
    Integer,
    Select,
    String,
    and_,
    case,
    func,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session, aliased

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
    QcMedian,
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


def _beyond(column: Any, bound: float, side: str) -> Any:
    """column at or beyond the bound on one side. An integer column is compared with the nearest integer
    inside the bound (the same takes): against a float the database casts the column and loses its index."""
    if isinstance(column.type, Integer):
        return column >= math.ceil(bound) if side == "high" else column <= math.floor(bound)
    return column >= bound if side == "high" else column <= bound


def _outlier_selects(
    f: QcFilter, spreads: dict[tuple[int, str], Spread], flag: str | None = None
) -> list[Any]:
    """Per project, metric and side (or only `flag`'s): a select of the takes in scope beyond the
    project's threshold, with the outlier flag they earn. One index range each: an OR over them would
    let the planner read every take instead."""
    t = TakeFigures
    selects = []
    for (project, metric), spread in sorted(spreads.items()):
        bounds = spread.bounds()
        if bounds is None:
            continue
        for side, bound in (("high", bounds[1]), ("low", bounds[0])):
            name = f"outlier_{metric}_{side}"
            if flag is not None and name != flag:
                continue
            query = select(t.recording_id, t.project_id, t.user_id, literal(name, String).label("flag"))
            selects.append(
                _scope(query.where(t.project_id == project, _beyond(getattr(t, metric), bound, side)), t, f)
            )
    return selects


class Outlying(NamedTuple):
    """One outlier flag of one take in scope, and whether the take also has a stored flag."""

    recording_id: int
    project_id: int
    user_id: int
    flag: str
    stored: bool


def outlying_takes(session: Session, f: QcFilter, spreads: dict[tuple[int, str], Spread]) -> list[Outlying]:
    """Every outlier flag of the takes in scope: the index ranges beyond the thresholds, so as many rows
    as there are outliers (takes 3.5 robust z-scores out: few), never every take."""
    selects = _outlier_selects(f, spreads)
    if not selects:
        return []
    ranges = union_all(*selects).subquery()
    stored = select(literal_column("1")).where(QcFlag.recording_id == ranges.c.recording_id).exists()
    rows = session.connection().execute(  # Core rows: no ORM handling per row
        select(ranges.c.recording_id, ranges.c.project_id, ranges.c.user_id, ranges.c.flag, stored)
    )
    return [Outlying(int(r), int(p), int(u), str(flag), bool(s)) for r, p, u, flag, s in rows]


def _scope(query: Select[Any], table: Any, f: QcFilter) -> Select[Any]:
    if f.project_id is not None:
        query = query.where(table.project_id == f.project_id)
    if f.annotator_id is not None:
        query = query.where(table.user_id == f.annotator_id)
    return query


def _check_flag(flag: str | None) -> None:
    if flag and flag != "any" and flag not in QC_FLAGS:
        raise InvalidInput(f"Unknown QC flag {flag!r}; use any or one of {', '.join(QC_FLAGS)}.")


def _page(session: Session, f: QcFilter, outlying: list[Outlying]) -> tuple[list[int], int]:
    """The first `limit` ids (by id) of the takes the filter keeps, and how many it keeps: totals from
    the counts, ids from index-ordered sources (each read up to `limit` rows) and the outliers."""
    limit = max(1, min(f.limit, MAX_PAGE))
    if not f.flag:
        ids = _scope(select(TakeFigures.recording_id), TakeFigures, f).order_by(TakeFigures.recording_id)
        return list(session.scalars(ids.limit(limit))), _take_count(session, f)
    if f.flag.startswith("outlier_"):
        found = sorted({o.recording_id for o in outlying if o.flag == f.flag})
        return found[:limit], len(found)
    counts = _stored_counts(session, f)
    if f.flag == "any":
        extra = {o.recording_id for o in outlying if not o.stored}
        total = sum(n for (_, flag), n in counts.items() if flag == ANY_STORED_FLAG) + len(extra)
        sources = [key for key in counts if key[1] != ANY_STORED_FLAG]
        found = set(_first_stored_ids(session, f, sources, limit)) | {o.recording_id for o in outlying}
        return sorted(found)[:limit], total
    sources = [key for key in counts if key[1] == f.flag]
    total = sum(counts[key] for key in sources)
    return sorted(set(_first_stored_ids(session, f, sources, limit)))[:limit], total


def _stored_counts(session: Session, f: QcFilter) -> dict[tuple[int, str], int]:
    """Takes in scope per project and stored flag (and ANY_STORED_FLAG), from qc_flag_counts."""
    c = QcFlagCount
    query = _scope(select(c.project_id, c.flag, func.sum(c.takes)), c, f).group_by(c.project_id, c.flag)
    return {(p, flag): int(n) for p, flag, n in session.execute(query) if n}


def _first_stored_ids(session: Session, f: QcFilter, sources: list[tuple[int, str]], limit: int) -> list[int]:
    """The first `limit` ids of each (project, stored flag) in scope: ranges of ix_qc_flags_project_flag,
    already in id order, so each reads at most `limit` rows (more only to skip other annotators')."""
    if not sources:
        return []
    firsts = []
    for project, flag in sorted(sources):
        query = select(QcFlag.recording_id).where(QcFlag.project_id == project, QcFlag.flag == flag)
        first = _scope(query, QcFlag, f).order_by(QcFlag.recording_id).limit(limit).subquery()
        firsts.append(select(first.c.recording_id))
    return [int(i) for i in session.scalars(union_all(*firsts))]


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


def flag_counts(session: Session, f: QcFilter, outlying: list[Outlying]) -> dict[str, int]:
    """Takes per flag in scope: stored flags from their counts, outlier flags from the outliers."""
    counts: dict[str, int] = defaultdict(int)
    for (_, flag), n in _stored_counts(session, f).items():
        if flag != ANY_STORED_FLAG:
            counts[flag] += n
    for o in outlying:
        counts[o.flag] += 1
    return dict(sorted(counts.items()))


class AnnotatorFigures(NamedTuple):
    """What the annotator summary reads that does not depend on the spreads or the outliers."""

    takes: dict[tuple[int, int], tuple[str, int]]  # (project, annotator) -> (name, takes)
    stored_flagged: dict[tuple[int, int], int]  # takes with a stored flag
    medians: dict[tuple[int, int, str], float]


def annotator_figures(session: Session, f: QcFilter) -> AnnotatorFigures:
    r = SummaryRollup
    people = _scope(
        select(r.project_id, r.user_id, User.name, func.sum(r.takes))
        .join(User, User.id == r.user_id)
        .where(r.day == ALL_DAYS, r.user_id != ALL_ANNOTATORS),
        r,
        f,
    ).group_by(r.project_id, r.user_id, User.name)
    takes = {(p, u): (name, int(n)) for p, u, name, n in session.execute(people) if n}
    c = QcFlagCount
    stored = _scope(select(c.project_id, c.user_id, c.takes), c, f).where(c.flag == ANY_STORED_FLAG)
    stored_flagged: dict[tuple[int, int], int] = defaultdict(int)
    for p, u, n in session.execute(stored):
        stored_flagged[(p, u)] += int(n)
    return AnnotatorFigures(takes, dict(stored_flagged), annotator_medians(session, f))


def annotator_summary(
    session: Session,
    f: QcFilter,
    spreads: dict[tuple[int, str], Spread],
    outlying: list[Outlying],
    figures: AnnotatorFigures | None = None,
) -> list[dict[str, Any]]:
    """Per project and annotator: takes, flagged takes, medians, and each median's robust z against
    the project (medians from the annotator's histograms)."""
    takes, stored_flagged, medians = figures or annotator_figures(session, f)
    flagged = _flagged_per_annotator(stored_flagged, outlying)
    names = [(metric, f"median_{metric}", f"z_{metric}") for metric in Z_METRICS]
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
        for metric, median_name, z_name in names:
            median = medians.get((project, user, metric))
            spread = spreads.get((project, metric))
            z = spread.z(median) if spread is not None and median is not None else 0.0
            row[median_name] = None if median is None else round(median, 4)
            row[z_name] = round(z, 2)
            if abs(z) >= OUTLIER_Z:
                outliers.append(f"{metric}_{'high' if z > 0 else 'low'}")
        row["outliers"] = outliers
        rows.append(row)
    return rows


def annotator_medians(session: Session, f: QcFilter) -> dict[tuple[int, int, str], float]:
    """Each annotator's median per metric from their histogram, each bucket's takes standing at its mean.
    qc_medians says which bucket holds the lower middle take (position (n - 1) // 2); the upper one
    (n // 2) is in the same bucket or, when that one ends there, in the next with takes: one or two rows
    per annotator and metric, however many buckets they have."""
    m, b = QcMedian, MetricBucket
    nxt = aliased(MetricBucket)
    same = (b.project_id == m.project_id, b.user_id == m.user_id, b.metric == m.metric)
    following = (
        select(nxt.total / nxt.takes)
        .where(
            nxt.project_id == m.project_id,
            nxt.user_id == m.user_id,
            nxt.metric == m.metric,
            nxt.bucket > m.bucket,
            nxt.takes > 0,
        )
        .order_by(nxt.bucket)
        .limit(1)
        .scalar_subquery()
    )
    # Read only where the upper middle take is past this bucket (CASE evaluates it lazily).
    upper = case((m.takes // 2 >= m.below + b.takes, following), else_=None)
    query = select(m.project_id, m.user_id, m.metric, b.takes, b.total, upper).join(
        b, and_(*same, b.bucket == m.bucket)
    )
    medians: dict[tuple[int, int, str], float] = {}
    for project, user, metric, takes, total, upper_mean in session.connection().execute(_scope(query, m, f)):
        mean = float(total) / int(takes)
        medians[(project, user, metric)] = mean if upper_mean is None else (mean + float(upper_mean)) / 2
    return medians


def _flagged_per_annotator(
    stored_flagged: dict[tuple[int, int], int], outlying: list[Outlying]
) -> dict[tuple[int, int], int]:
    """Takes with a stored flag (counted) plus the outlying takes without one."""
    flagged: dict[tuple[int, int], int] = defaultdict(int, stored_flagged)
    for o in {(o.recording_id, o.project_id, o.user_id) for o in outlying if not o.stored}:
        flagged[(o[1], o[2])] += 1
    return dict(flagged)


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


def _without_jit(session: Session) -> None:
    """QC's reads are index ranges of at most a few thousand rows, but PostgreSQL estimates the tails
    beyond the thresholds generously and then JIT-compiles the outliers' query: ~0.8 s at 10M takes for a
    query that runs in ~50 ms. Off for the rest of this transaction (the report's reads)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def qc_report(session: Session, settings: Settings, f: QcFilter) -> dict[str, Any]:
    """Takes with their QC flags (filtered, one page) and the per-annotator outlier summary."""
    _check_flag(f.flag)
    # The annotators' takes and medians do not depend on the spreads and outliers read here: on
    # PostgreSQL a second connection reads them meanwhile, so the database answers both at once. (On
    # SQLite every transaction takes the write lock, so the second would wait for this one: in turn.)
    bind = session.get_bind()
    with ThreadPoolExecutor(max_workers=1) as meanwhile:
        later = None
        if bind.dialect.name == "postgresql":
            later = meanwhile.submit(_on_own_connection, bind, annotator_figures, f)
        _without_jit(session)
        spreads = project_spreads(session, f.project_id)
        outlying = outlying_takes(session, f, spreads)
        ids, total = _page(session, f, outlying)
        takes = _takes(session, ids, spreads)
        counts = flag_counts(session, f, outlying)
        figures = later.result() if later is not None else annotator_figures(session, f)
        annotators = annotator_summary(session, f, spreads, outlying, figures)
    return {"takes": takes, "annotators": annotators, "total": total, "flag_counts": counts}


def _on_own_connection(bind: Any, read: Any, f: QcFilter) -> Any:
    with Session(bind) as own:
        _without_jit(own)
        return read(own, f)


def recordings_with_flag(
    session: Session, settings: Settings, flag: str, project_id: int | None = None
) -> list[int]:
    """Ids of the takes carrying a QC flag (or any flag, for `any`), for the review queue's filter."""
    _check_flag(flag)
    _without_jit(session)
    f = QcFilter(project_id=project_id, flag=flag)
    outlying = outlying_takes(session, f, project_spreads(session, project_id))
    found = {o.recording_id for o in outlying if flag in ("any", o.flag)}
    if not flag.startswith("outlier_"):
        stored = _scope(select(QcFlag.recording_id), QcFlag, f)
        stored = stored if flag == "any" else stored.where(QcFlag.flag == flag)
        found.update(int(i) for i in session.scalars(stored))
    return sorted(found)
