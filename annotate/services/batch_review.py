"""Approve many captions at once: the lead filtered the queue, looked, and confirmed the count.

Each caption is approved through review.decide, in its own savepoint, so one that changed meanwhile
(approved, rejected or superseded by someone else) is reported and skipped while the rest are approved.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from annotate.errors import InvalidInput, VoicecapError
from annotate.services.review import decide, get_caption
from db.models import User

MAX_BATCH = 500


def approve_many(
    session: Session, reviewer: User, caption_ids: list[int], *, source: str = "web"
) -> dict[str, Any]:
    """Approve each pending caption of `caption_ids`; returns the approved ids and the skipped ones with
    why. The caller commits."""
    ids = list(dict.fromkeys(caption_ids))  # once each, in the order given
    if not ids:
        raise InvalidInput("Choose at least one caption to approve.")
    if len(ids) > MAX_BATCH:
        raise InvalidInput(f"Approve at most {MAX_BATCH} captions at once; narrow the filter.")
    approved: list[int] = []
    skipped: list[dict[str, Any]] = []
    for caption_id in ids:
        try:
            with session.begin_nested():
                caption = get_caption(session, caption_id, lock=True)
                if caption.status != "pending":
                    skipped.append({"id": caption_id, "reason": f"already {caption.status}"})
                    continue
                decide(session, caption_id, reviewer, "approve", source=source)
            approved.append(caption_id)
        except VoicecapError as error:
            skipped.append({"id": caption_id, "reason": error.message})
    return {"approved": approved, "skipped": skipped}
