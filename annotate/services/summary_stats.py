"""The dashboard's grouped figures read from the summary roll-ups: a few thousand rows, whatever the takes.

Same columns and meaning as the pandas computation over every take (annotate.services.stats.compute),
with two documented differences: the median take length comes from ~5%-wide buckets (each bucket's mean
stands for its takes), and images done counts live takes (one per image and annotator, as assignments
are) rather than distinct images.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd
from sqlalchemy import Select, func, literal, select
from sqlalchemy.orm import Session

from db.models import Project, User
from db.summary_models import (
    ALL_ANNOTATORS,
    ALL_DAYS,
    ALL_PROJECTS,
    ActiveDay,
    AnnotatorActiveDays,
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


def _grain(r: type[SummaryRollup], by: str) -> list[Any]:
    """The roll-up rows a grouping reads: per annotator, per day, or per project (summed over slots)."""
    per_annotator = r.user_id != ALL_ANNOTATORS if by == "annotator" else r.user_id == ALL_ANNOTATORS
    per_day = r.day != ALL_DAYS if by == "day" else r.day == ALL_DAYS
    return [per_annotator, per_day]


def summary_table(session: Session, project_id: int | None, by: str) -> pd.DataFrame:
    """One row per key with the counts compute() derives its columns from (before rates)."""
    r = SummaryRollup
    key = _key_column(r, by).label("key")
    query = select(key, *[func.sum(getattr(r, c)).label(c) for c in SUMMED]).where(*_grain(r, by))
    rows = session.execute(_grouped(query, r, by, project_id)).all()
    table = pd.DataFrame([tuple(row) for row in rows], columns=["key", *SUMMED]).set_index("key").fillna(0)
    table = table[(table[list(SUMMED)] != 0).any(axis=1)]
    active_days = pd.Series(_active_days(session, project_id, by), dtype=float).reindex(table.index)
    medians = _medians(session, project_id, by)
    captions = table["captions_pending"] + table["captions_approved"] + table["captions_rejected"]
    return pd.DataFrame(
        {
            "images_done": table["takes"] - table["failed_takes"] - table["rejected_takes"],
            "takes": table["takes"],
            "audio_hours": table["audio_seconds"] / 3600.0,
            "median_seconds_per_take": pd.Series(medians, dtype=float).reindex(table.index),
            "active_days": active_days.fillna(0),
            "captions": captions,
            "words_per_caption": table["caption_words"] / captions.where(captions > 0),
            "reviewed": table["approved"] + table["rejected"] + table["sent_back"],
            "approved": table["approved"],
            "rejected": table["rejected"],
            "sent_back": table["sent_back"],
        }
    )


def _active_days(session: Session, project_id: int | None, by: str) -> dict[Any, int]:
    """Days with takes per key: counted on the roll-ups (per annotator) or read from the day marks
    (per project: at most a few thousand rows). By day it is not used (a day is its own day)."""
    if by == "day":
        return {}
    if by == "annotator" and project_id is None:
        across = select(User.name, AnnotatorActiveDays.days).join(
            User, User.id == AnnotatorActiveDays.user_id
        )
        return {name: int(days) for name, days in session.execute(across)}
    if by == "annotator":
        r = SummaryRollup
        per_annotator = select(User.name, func.sum(r.active_days)).join(User, User.id == r.user_id)
        per_annotator = per_annotator.where(r.project_id == project_id, *_grain(r, by)).group_by(User.name)
        return {name: int(days) for name, days in session.execute(per_annotator)}
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
