"""The review queue and decisions, and the take's audio for the reviewer's player (leads and admins)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from annotate.api.deps import BlobsDep, LeadUser, SessionDep, SettingsDep
from annotate.api.media import send_blob
from annotate.errors import NotFound
from annotate.services import qc
from annotate.services import review as service
from db.models import CaptionStatus, Recording

router = APIRouter(prefix="/api", tags=["review"])


class DecisionRequest(BaseModel):
    decision: Literal["approve", "edit", "reject", "retranscribe", "reclean"]
    text: str | None = Field(
        None, max_length=service.MAX_CAPTION_CHARS, description="The new text, for edit."
    )
    reason: str = Field("", max_length=service.MAX_REASON, description="Required for reject.")


@router.get("/review/queue")
def queue(
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
    after: int | None = Query(None, description="Return captions with a larger id (paging)."),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Captions to review, oldest first, filtered; `next_after` pages on."""
    takes = qc.recordings_with_flag(session, settings, qc_flag, project) if qc_flag else None
    f = service.QueueFilter(
        project_id=project,
        annotator_id=annotator,
        flag=flag or None,
        status=None if state == "all" else state,
        after_id=after,
        limit=limit,
        recording_ids=takes,
    )
    return service.list_queue(session, f)


@router.get("/review/choices")
def choices(session: SessionDep, _: LeadUser) -> dict[str, Any]:
    """What the queue filters offer: projects, annotators, flag names, QC flags, states."""
    return {**service.queue_choices(session), "qc_flags": qc.QC_FLAGS}


@router.get("/review/captions/{caption_id}")
def caption(caption_id: int, session: SessionDep, _: LeadUser) -> dict[str, Any]:
    """One caption with its image, transcript (word timings), recording figures and history."""
    return service.caption_detail(session, caption_id)


@router.post("/review/captions/{caption_id}/decision")
def decide(
    caption_id: int,
    body: DecisionRequest,
    session: SessionDep,
    settings: SettingsDep,
    user: LeadUser,
) -> dict[str, Any]:
    """Approve, edit (and approve), reject with a reason, or send back for re-transcription / re-cleaning."""
    result = service.decide(
        session,
        caption_id,
        user,
        body.decision,
        text=body.text,
        reason=body.reason,
        source="web",
        faithfulness_threshold=settings.faithfulness_threshold,
    )
    session.commit()
    return service.decision_dict(result, user.name)


@router.get("/recordings/{recording_id}/audio", response_class=FileResponse)
def audio(
    recording_id: int,
    request: Request,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    _: LeadUser,
) -> Response:
    """The take as uploaded, with its content type; Range requests are answered so the player can seek."""
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFound(f"No recording {recording_id}.")
    # Content-addressed: the bytes behind a key never change, so the browser may cache them.
    return send_blob(
        request,
        blobs,
        settings,
        recording.original_key,
        recording.content_type or "application/octet-stream",
        headers={"Cache-Control": "private, max-age=86400"},
        missing=f"The audio of recording {recording_id} is missing from the blob store.",
        code="not_found",
    )
