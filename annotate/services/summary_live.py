"""The counts the dashboard polls, from the summaries and from indexes that touch only a little.

Takes in a working state (uploaded … cleaning) are the queue's backlog: counted on the claim index, which
holds few of them. Failed and rejected takes and captions by status are summed from the per-project
roll-ups, and captioned takes are the rest. Decisions in the last 24 hours are read on the reviews'
time index. Images and complete images are summed from their per-project slots.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Caption, Image, Recording, RecordingStatus, Review
from db.summary_models import ALL_ANNOTATORS, ALL_DAYS, CAPTION_STATE_COLUMNS, ImageCount, SummaryRollup

WORKING = [
    RecordingStatus.uploaded,
    RecordingStatus.transcribing,
    RecordingStatus.transcribed,
    RecordingStatus.cleaning,
]
SUMMED = (
    "takes",
    "failed_takes",
    "rejected_takes",
    "captions_flagged_pending",
    *CAPTION_STATE_COLUMNS.values(),
)


def live_counts(session: Session, project_id: int | None = None) -> dict[str, Any]:
    """Cheap counts the dashboard polls: the pipeline's states, the review queue, today's decisions."""
    s = SummaryRollup  # the per-project roll-ups: ROLLUP_SLOTS rows a project
    totals = select(*[func.coalesce(func.sum(getattr(s, c)), 0) for c in SUMMED]).where(
        s.user_id == ALL_ANNOTATORS, s.day == ALL_DAYS
    )
    if project_id is not None:
        totals = totals.where(s.project_id == project_id)
    sums = dict(zip(SUMMED, (int(v) for v in session.execute(totals).one()), strict=True))
    captions = {state: sums[column] for state, column in CAPTION_STATE_COLUMNS.items() if sums[column]}
    return {
        "recordings": _recordings(session, project_id, sums),
        "captions": captions,
        "review_queue": sums["captions_pending"],
        "flagged_pending": sums["captions_flagged_pending"],
        "reviews_last_24h": _reviews_last_day(session, project_id),
        **_images(session, project_id),
        "at": datetime.now(UTC).isoformat(),
    }


def _recordings(session: Session, project_id: int | None, sums: dict[str, int]) -> dict[str, int]:
    query = select(Recording.status, func.count()).where(Recording.status.in_(WORKING))
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    counts = {status.value: 0 for status in RecordingStatus}
    for status, count in session.execute(query.group_by(Recording.status)):
        counts[RecordingStatus(status).value] = int(count)
    counts["failed"] = sums["failed_takes"]
    counts["rejected"] = sums["rejected_takes"]
    working = sum(counts[s.value] for s in WORKING)
    counts["captioned"] = sums["takes"] - working - sums["failed_takes"] - sums["rejected_takes"]
    return counts


def _reviews_last_day(session: Session, project_id: int | None) -> int:
    query = (
        select(func.count())
        .select_from(Review)
        .where(Review.created_at >= datetime.now(UTC) - timedelta(days=1))
    )
    if project_id is not None:
        query = (
            query.join(Caption, Caption.id == Review.caption_id)
            .join(Image, Image.id == Caption.image_id)
            .where(Image.project_id == project_id)
        )
    return int(session.scalar(query) or 0)


def _images(session: Session, project_id: int | None) -> dict[str, int]:
    query = select(
        func.coalesce(func.sum(ImageCount.images), 0), func.coalesce(func.sum(ImageCount.images_complete), 0)
    )
    if project_id is not None:
        query = query.where(ImageCount.project_id == project_id)
    images, complete = session.execute(query).one()
    return {"images": int(images), "images_complete": int(complete)}
