"""The dashboard's grouped figures read from the summary tables: a few hundred rows, whatever the takes.

Same columns and meaning as the pandas computation over every take (annotate.services.stats.compute),
with two documented differences: the median take length comes from ~5%-wide buckets (each bucket's mean
stands for its takes), and images done counts live takes (one per image and annotator, as assignments
are) rather than distinct images.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd
from sqlalchemy import Select, case, func, literal, select
from sqlalchemy.orm import Session

from db.models import Project, User
from db.summary_models import ALL_ANNOTATORS, ALL_DAYS, NO_ANNOTATOR, DailySummary, DurationBucket

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


def summary_table(session: Session, project_id: int | None, by: str) -> pd.DataFrame:
    """One row per key with the counts compute() derives its columns from (before rates)."""
    s = DailySummary
    key = _key_column(s, by).label("key")
    active = func.count(func.distinct(case((s.takes > 0, s.day))))
    query = select(key, *[_sum(s, c, by).label(c) for c in SUMMED], active.label("active_days"))
    rows = session.execute(_grouped(query, s, by, project_id)).all()
    table = (
        pd.DataFrame([tuple(r) for r in rows], columns=["key", *SUMMED, "active_days"])
        .set_index("key")
        .fillna(0)
    )
    table = table[(table[list(SUMMED)] != 0).any(axis=1)]
    medians = _medians(session, project_id, by)
    captions = table["captions_pending"] + table["captions_approved"] + table["captions_rejected"]
    return pd.DataFrame(
        {
            "images_done": table["takes"] - table["failed_takes"] - table["rejected_takes"],
            "takes": table["takes"],
            "audio_hours": table["audio_seconds"] / 3600.0,
            "median_seconds_per_take": pd.Series(medians, dtype=float).reindex(table.index),
            "active_days": table["active_days"],
            "captions": captions,
            "words_per_caption": table["caption_words"] / captions.where(captions > 0),
            "reviewed": table["approved"] + table["rejected"] + table["sent_back"],
            "approved": table["approved"],
            "rejected": table["rejected"],
            "sent_back": table["sent_back"],
        }
    )


def _sum(s: type[DailySummary], column: str, by: str) -> Any:
    """A merged caption (no annotator) has no take's day: by day, only its review decisions count."""
    if by == "day" and column.startswith("caption"):
        return func.sum(case((s.user_id != NO_ANNOTATOR, getattr(s, column)), else_=0))
    return func.sum(getattr(s, column))


def _medians(session: Session, project_id: int | None, by: str) -> dict[Any, float]:
    b = DurationBucket
    key = _key_column(b, by).label("key")
    query = select(key, b.bucket, func.sum(b.takes), func.sum(b.seconds))
    per_annotator = b.user_id != ALL_ANNOTATORS if by == "annotator" else b.user_id == ALL_ANNOTATORS
    per_day = b.day != ALL_DAYS if by == "day" else b.day == ALL_DAYS
    query = _grouped(query.where(per_annotator, per_day), b, by, project_id).group_by(b.bucket)
    histograms: dict[Any, list[tuple[int, int, float]]] = defaultdict(list)
    for k, bucket, takes, seconds in session.execute(query):
        if takes:
            histograms[k].append((int(bucket), int(takes), float(seconds)))
    return {k: median_of(sorted(h)) for k, h in histograms.items()}


def median_of(histogram: list[tuple[int, int, float]]) -> float:
    """The median of bucketed values, each bucket's takes standing at the bucket's mean."""
    total = sum(n for _, n, _ in histogram)
    middle = [(total - 1) // 2, total // 2]  # the one or two middle positions (0-based)
    values: list[float] = []
    seen = 0
    for _, n, seconds in histogram:
        for position in middle:
            if seen <= position < seen + n:
                values.append(seconds / n)
        seen += n
    return sum(values) / len(values)
