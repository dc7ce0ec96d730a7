"""Review triage (leads and admins): the queue sorted by "needs attention", one caption's attention
flags, batch approval of a checked selection, and the dashboard's activity figures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from annotate.api.deps import LeadUser, SessionDep, SettingsDep
from annotate.services import activity, attention, batch_review, qc
from annotate.services.review import QueueFilter
from db.models import CaptionStatus

router = APIRouter(prefix="/api", tags=["review"])


class BatchApproveRequest(BaseModel):
    caption_ids: list[int] = Field(
        min_length=1, max_length=batch_review.MAX_BATCH, description="The captions the lead confirmed."
    )


@router.get("/review/attention-queue")
def attention_queue(
    session: SessionDep,
    settings: SettingsDep,
    _: LeadUser,
    project: int | None = Query(None, description="Project id."),
    annotator: int | None = Query(None, description="Annotator (user) id."),
    flag: str | None = Query(None, max_length=100, description="flagged, unflagged, or a flag name."),
    qc_flag: str | None = Query(
        None, alias="qc", max_length=100, description="Only takes with this QC flag (or `any`)."
    ),
    state: str = Query(CaptionStatus.pending.value, description=f"{', '.join(CaptionStatus)} or all."),
    offset: int = Query(0, ge=0, description="Skip this many (paging)."),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """The review queue worst first (unsure recognition, quiet, mostly silent, flagged, unfaithful)."""
    takes = qc.recordings_with_flag(session, settings, qc_flag, project) if qc_flag else None
    f = QueueFilter(
        project_id=project,
        annotator_id=annotator,
        flag=flag or None,
        status=None if state == "all" else state,
        limit=limit,
        recording_ids=takes,
    )
    return attention.attention_queue(session, settings, f, offset)


@router.get("/review/captions/{caption_id}/attention")
def caption_attention(
    caption_id: int, session: SessionDep, settings: SettingsDep, _: LeadUser
) -> dict[str, Any]:
    """A caption's attention flags and score, and the word probability under which a word is unsure."""
    return attention.caption_attention(session, settings, caption_id)


@router.post("/review/batch-approve")
def batch_approve(body: BatchApproveRequest, session: SessionDep, user: LeadUser) -> dict[str, Any]:
    """Approve the given pending captions; ones decided meanwhile are skipped and listed with why."""
    result = batch_review.approve_many(session, user, body.caption_ids)
    session.commit()
    return result


@router.get("/stats/activity")
def activity_figures(
    session: SessionDep,
    _: LeadUser,
    project: int | None = Query(None, description="Project id; all projects when left out."),
) -> dict[str, Any]:
    """Skips by reason, decisions per day per reviewer, and seconds from upload to first caption."""
    return activity.activity(session, project)
