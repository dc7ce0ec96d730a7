"""The dashboard's figures, per project, per annotator or per day, computed with pandas.

Three narrow frames are read (takes, current captions, the last review of each caption) and grouped by
the chosen key. A take's day is the day it was recorded; a review's day is the day it was decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotate.errors import InvalidInput
from annotate.services import summary_live, summary_stats
from annotate.services.qc import query_frame, records
from db.models import DEAD_RECORDING_STATES, Caption, CaptionStatus, Image, Project, Recording, Review, User
from db.queue import counts_by_status

GROUPINGS = ("project", "annotator", "day")
APPROVING = {"approve", "edit"}
SENDING_BACK = {"retranscribe", "reclean"}
# The takes frame holds plain status strings (mapped when it is read), so dead states match by value.
DEAD_VALUES = [s.value for s in DEAD_RECORDING_STATES]
COLUMNS = summary_stats.COLUMNS  # the dashboard's columns, in order


@dataclass
class Frames:
    takes: pd.DataFrame
    captions: pd.DataFrame
    reviews: pd.DataFrame


def load_frames(session: Session, project_id: int | None = None) -> Frames:
    takes = (
        select(
            Recording.id.label("recording_id"),
            Recording.image_id,
            Recording.created_at,
            Recording.duration_seconds,
            Recording.status,
            Project.name.label("project"),
            User.name.label("annotator"),
        )
        .join(Project, Project.id == Recording.project_id)
        .join(User, User.id == Recording.user_id)
    )
    captions = (
        select(
            Caption.id.label("caption_id"),
            Caption.recording_id,
            Caption.word_count,
            Project.name.label("project"),
        )
        .join(Image, Image.id == Caption.image_id)
        .join(Project, Project.id == Image.project_id)
        .where(Caption.status != CaptionStatus.superseded)
    )
    last_review = select(func.max(Review.id)).group_by(Review.caption_id)
    reviews = (
        select(
            Review.caption_id,
            Review.decision,
            Review.created_at,
            Caption.recording_id,
            Project.name.label("project"),
        )
        .join(Caption, Caption.id == Review.caption_id)
        .join(Image, Image.id == Caption.image_id)
        .join(Project, Project.id == Image.project_id)
        .where(Review.id.in_(last_review))
    )
    if project_id is not None:
        takes = takes.where(Recording.project_id == project_id)
        captions = captions.where(Image.project_id == project_id)
        reviews = reviews.where(Image.project_id == project_id)
    frames = Frames(
        query_frame(session, takes), query_frame(session, captions), query_frame(session, reviews)
    )
    if not frames.takes.empty:
        frames.takes["status"] = frames.takes["status"].map(lambda s: getattr(s, "value", s))
    if not frames.reviews.empty:
        frames.reviews["decision"] = frames.reviews["decision"].map(lambda d: getattr(d, "value", d))
    return frames


def _day(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).dt.strftime("%Y-%m-%d")


def _keyed(frames: Frames, by: str) -> Frames:
    """Each frame with a `key` column for the grouping (captions and reviews get a take's annotator)."""
    takes, captions, reviews = frames.takes.copy(), frames.captions.copy(), frames.reviews.copy()
    annotators = takes.set_index("recording_id")["annotator"] if not takes.empty else pd.Series(dtype=object)
    if by == "project":
        for frame in (takes, captions, reviews):
            frame["key"] = frame["project"] if not frame.empty else None
    elif by == "annotator":
        takes["key"] = takes.get("annotator")
        captions["key"] = captions["recording_id"].map(annotators) if not captions.empty else None
        reviews["key"] = reviews["recording_id"].map(annotators) if not reviews.empty else None
    else:
        takes["key"] = _day(takes["created_at"]) if not takes.empty else None
        captions["key"] = None  # words per caption by day follow the takes' days
        if not captions.empty and not takes.empty:
            days = takes.set_index("recording_id")["key"]
            captions["key"] = captions["recording_id"].map(days)
        reviews["key"] = _day(reviews["created_at"]) if not reviews.empty else None
    return Frames(takes, captions.dropna(subset=["key"]), reviews.dropna(subset=["key"]))


def compute(frames: Frames, by: str) -> pd.DataFrame:
    """One row per key with the dashboard's columns."""
    if by not in GROUPINGS:
        raise InvalidInput(f"Unknown grouping {by!r}; use {', '.join(GROUPINGS)}.")
    keyed = _keyed(frames, by)
    parts: list[pd.DataFrame] = []
    takes = keyed.takes
    if not takes.empty:
        takes = takes.assign(day=_day(takes["created_at"]), done=~takes["status"].isin(DEAD_VALUES))
        grouped = takes.groupby("key")
        parts.append(
            pd.DataFrame(
                {
                    "images_done": takes[takes["done"]].groupby("key")["image_id"].nunique(),
                    "takes": grouped.size(),
                    "audio_hours": grouped["duration_seconds"].sum() / 3600.0,
                    "median_seconds_per_take": grouped["duration_seconds"].median(),
                    "active_days": grouped["day"].nunique(),
                }
            )
        )
    if not keyed.captions.empty:
        grouped = keyed.captions.groupby("key")
        parts.append(
            pd.DataFrame({"captions": grouped.size(), "words_per_caption": grouped["word_count"].mean()})
        )
    if not keyed.reviews.empty:
        reviews = keyed.reviews
        decided = reviews.assign(
            approved=reviews["decision"].isin(APPROVING),
            rejected=reviews["decision"] == "reject",
            sent_back=reviews["decision"].isin(SENDING_BACK),
        ).groupby("key")
        parts.append(
            pd.DataFrame(
                {
                    "reviewed": decided.size(),
                    "approved": decided["approved"].sum(),
                    "rejected": decided["rejected"].sum(),
                    "sent_back": decided["sent_back"].sum(),
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=["key", *COLUMNS])
    return finish(pd.concat(parts, axis=1), by)


def finish(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """The dashboard's columns from per-key counts (from takes or from summaries): rates, quiet days."""
    if table.empty:
        return pd.DataFrame(columns=["key", *COLUMNS])
    for column in (
        "images_done",
        "takes",
        "captions",
        "reviewed",
        "approved",
        "rejected",
        "sent_back",
        "active_days",
    ):
        table[column] = table[column].fillna(0).astype(int) if column in table else 0
    for column in ("audio_hours", "median_seconds_per_take", "words_per_caption"):
        if column not in table:
            table[column] = float("nan")
    reviewed = table["reviewed"].where(table["reviewed"] > 0)
    table["approval_rate"] = table["approved"] / reviewed
    table["rejection_rate"] = table["rejected"] / reviewed
    table["takes_per_day"] = table["takes"] / table["active_days"].where(table["active_days"] > 0)
    if by == "day":
        table = _fill_days(table)
    table = table.sort_index().reset_index(names="key")
    return table[["key", *COLUMNS]]


def _fill_days(table: pd.DataFrame) -> pd.DataFrame:
    """Every day between the first and last, so a chart shows quiet days as zero."""
    days = pd.date_range(min(table.index), max(table.index), freq="D").strftime("%Y-%m-%d")
    table = table.reindex(days)
    counts = [
        "images_done",
        "takes",
        "captions",
        "reviewed",
        "approved",
        "rejected",
        "sent_back",
        "active_days",
    ]
    table[counts] = table[counts].fillna(0).astype(int)
    table["audio_hours"] = table["audio_hours"].fillna(0.0)
    table["takes_per_day"] = table["takes"].astype(float)
    return table


def totals(frames: Frames) -> dict[str, Any]:
    """The same columns over everything loaded (one row keyed "all")."""
    merged = Frames(
        frames.takes.assign(project="all"),
        frames.captions.assign(project="all"),
        frames.reviews.assign(project="all"),
    )
    table = compute(merged, "project")
    if table.empty:
        return {column: 0 for column in COLUMNS}
    row = records(table)[0]
    row.pop("key", None)
    return row


def stats(session: Session, project_id: int | None = None, by: str = "annotator") -> dict[str, Any]:
    """The dashboard table for `by`, with totals; JSON-ready. Read from the summary tables."""
    if by not in GROUPINGS:
        raise InvalidInput(f"Unknown grouping {by!r}; use {', '.join(GROUPINGS)}.")
    return {
        "by": by,
        "project_id": project_id,
        "rows": summary_stats.grouped_rows(session, project_id, by),
        "totals": summary_stats.totals(session, project_id),
    }


def stats_from_takes(
    session: Session, project_id: int | None = None, by: str = "annotator"
) -> dict[str, Any]:
    """The same table computed from every take (slow at scale): the reference the summaries must match."""
    frames = load_frames(session, project_id)
    return {
        "by": by,
        "project_id": project_id,
        "rows": records(compute(frames, by)),
        "totals": totals(frames),
    }


def live_counts(session: Session, project_id: int | None = None) -> dict[str, Any]:
    """Cheap counts the dashboard polls, read from the summaries (annotate.services.summary_live)."""
    return summary_live.live_counts(session, project_id)


def live_counts_from_rows(session: Session, project_id: int | None = None) -> dict[str, Any]:
    """The same counts from every take and caption (slow at scale): the reference for the summaries."""
    captions = select(Caption.status, Caption.flagged, func.count()).join(Image, Image.id == Caption.image_id)
    images = select(func.count()).select_from(Image)
    reviews_today = (
        select(func.count())
        .select_from(Review)
        .join(Caption, Caption.id == Review.caption_id)
        .join(Image, Image.id == Caption.image_id)
        .where(Review.created_at >= datetime.now(UTC) - timedelta(days=1))
    )
    complete = (
        select(func.count())
        .select_from(Image)
        .join(Project, Project.id == Image.project_id)
        .where(Image.done_count >= Project.per_image)
    )
    if project_id is not None:
        captions = captions.where(Image.project_id == project_id)
        images = images.where(Image.project_id == project_id)
        reviews_today = reviews_today.where(Image.project_id == project_id)
        complete = complete.where(Image.project_id == project_id)
    by_state: dict[str, int] = {}
    flagged_pending = 0
    for status, flagged, count in session.execute(captions.group_by(Caption.status, Caption.flagged)):
        by_state[status] = by_state.get(status, 0) + int(count)
        if status == CaptionStatus.pending and flagged:
            flagged_pending += int(count)
    return {
        "recordings": counts_by_status(session, project_id),
        "captions": by_state,
        "review_queue": by_state.get(CaptionStatus.pending, 0),
        "flagged_pending": flagged_pending,
        "reviews_last_24h": int(session.scalar(reviews_today) or 0),
        "images": int(session.scalar(images) or 0),
        "images_complete": int(session.scalar(complete) or 0),
        "at": datetime.now(UTC).isoformat(),
    }
