"""The dashboard's view of people and latency: skips and their reasons, each lead's decisions per day,
and how long a take waits from upload to its first caption.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotate.services.assignments import SKIP_REASONS
from annotate.services.qc import query_frame
from db.models import Assignment, AssignmentStatus, Caption, CaptionKind, Image, Recording, Review, User


def skips(session: Session, project_id: int | None = None) -> dict[str, Any]:
    """Skipped images in all and by reason (stored as `reason` or `reason: note`)."""
    query = select(Assignment.skip_reason, func.count()).where(Assignment.status == AssignmentStatus.skipped)
    if project_id is not None:
        query = query.where(Assignment.project_id == project_id)
    counts: dict[str, int] = {}
    for stored, count in session.execute(query.group_by(Assignment.skip_reason)):
        code = (stored or "other").split(":", 1)[0].strip()
        counts[code] = counts.get(code, 0) + int(count)
    reasons = [
        {"reason": code, "label": SKIP_REASONS.get(code, code), "count": count}
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    return {"total": sum(counts.values()), "reasons": reasons}


def reviewer_days(session: Session, project_id: int | None = None) -> list[dict[str, Any]]:
    """Decisions per day per reviewer (a lead's throughput), newest day first."""
    query = (
        select(Review.created_at, func.coalesce(User.name, Review.source).label("reviewer"), Review.decision)
        .outerjoin(User, User.id == Review.reviewer_id)
        .join(Caption, Caption.id == Review.caption_id)
        .join(Image, Image.id == Caption.image_id)
    )
    if project_id is not None:
        query = query.where(Image.project_id == project_id)
    frame = query_frame(session, query)
    if frame.empty:
        return []
    frame["day"] = pd.to_datetime(frame["created_at"], utc=True).dt.strftime("%Y-%m-%d")
    frame["decision"] = frame["decision"].map(lambda d: getattr(d, "value", d))
    table = frame.groupby(["day", "reviewer"])["decision"].agg(
        decisions="size",
        approved=lambda d: int(d.isin(["approve", "edit"]).sum()),
        rejected=lambda d: int((d == "reject").sum()),
    )
    rows = table.reset_index().sort_values(["day", "reviewer"], ascending=[False, True])
    return [
        {
            "day": row.day,
            "reviewer": row.reviewer,
            "decisions": int(row.decisions),
            "approved": int(row.approved),
            "rejected": int(row.rejected),
        }
        for row in rows.itertuples()
    ]


def upload_to_caption(session: Session, project_id: int | None = None) -> dict[str, Any]:
    """Seconds from a take's upload to its first caption: count, median, 90th percentile, slowest."""
    first_caption = (
        select(Caption.recording_id, func.min(Caption.created_at).label("captioned_at"))
        .where(Caption.kind == CaptionKind.single, Caption.recording_id.is_not(None))
        .group_by(Caption.recording_id)
        .subquery()
    )
    query = select(Recording.created_at, first_caption.c.captioned_at).join(
        first_caption, first_caption.c.recording_id == Recording.id
    )
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    frame = query_frame(session, query)
    if frame.empty:
        return {"count": 0, "median_seconds": None, "p90_seconds": None, "max_seconds": None}
    waits = (
        pd.to_datetime(frame["captioned_at"], utc=True) - pd.to_datetime(frame["created_at"], utc=True)
    ).dt.total_seconds()
    return {
        "count": len(waits),
        "median_seconds": round(float(waits.median()), 1),
        "p90_seconds": round(float(waits.quantile(0.9)), 1),
        "max_seconds": round(float(waits.max()), 1),
    }


def activity(session: Session, project_id: int | None = None) -> dict[str, Any]:
    return {
        "skips": skips(session, project_id),
        "reviewers": reviewer_days(session, project_id),
        "upload_to_caption": upload_to_caption(session, project_id),
    }
