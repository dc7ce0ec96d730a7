"""Uploading a take (idempotent by the client's UUID) and reading one's own recordings back."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from annotate.api.deps import AnnotatorUser, BlobsDep, SessionDep, SettingsDep, SignerDep, current_user
from annotate.api.media import send_blob
from annotate.errors import Conflict, NotFound, VoicecapError
from annotate.security import SessionSigner
from annotate.services import intake
from annotate.services.assignments import get_own_assignment, task_images
from annotate.services.permissions import may_review
from db.models import Recording, User

router = APIRouter(prefix="/api/recordings", tags=["recordings"])

AUDIO_TYPES = sorted(intake.CONTENT_TYPES)
# After refusing an upload early we still read (and drop) up to this much of its body, so a browser
# gets our JSON answer instead of a connection reset it would retry forever.
DRAIN_LIMIT = 64 * 1024 * 1024
# Decoding is CPU work: more takes in flight than cores only queue up inside worker threads, holding
# them (and, at the end, SQLite's write lock) while other requests wait for a thread. Extra uploads
# wait here instead, holding nothing; their clients are held back by TCP flow control.
INTAKE_SLOTS = anyio.CapacityLimiter(max(2, len(os.sched_getaffinity(0))))


class RecordingOut(BaseModel):
    id: int
    client_uuid: str
    created: bool
    status: str
    image_id: int
    assignment_id: int | None
    content_type: str
    size_bytes: int
    duration_seconds: float
    loudness_dbfs: float
    silence_fraction: float
    qc_flags: list[str] = []  # intake QC: quiet, mostly_silent
    created_at: datetime


class ErrorOut(BaseModel):
    code: str
    message: str


def recording_out(recording: Recording, created: bool) -> RecordingOut:
    return RecordingOut(
        id=recording.id,
        client_uuid=recording.client_uuid,
        created=created,
        status=recording.status.value,
        image_id=recording.image_id,
        assignment_id=recording.assignment_id,
        content_type=recording.content_type,
        size_bytes=recording.size_bytes,
        duration_seconds=recording.duration_seconds,
        loudness_dbfs=recording.loudness_dbfs,
        silence_fraction=recording.silence_fraction,
        qc_flags=list((recording.meta or {}).get("qc_flags", [])),
        created_at=recording.created_at,
    )


def _error_responses() -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": RecordingOut, "description": "This UUID was stored before; nothing new stored."},
        409: {"model": ErrorOut, "description": "The assignment was skipped or already submitted."},
        413: {"model": ErrorOut, "description": "audio_too_large"},
        415: {"model": ErrorOut, "description": "unsupported_media_type"},
        422: {
            "model": ErrorOut,
            "description": "audio_empty, audio_undecodable, audio_too_short, audio_too_long, audio_silent, "
            "audio_bad_sample_rate, audio_bad_channels, audio_bad_frame_size",
        },
    }


@router.put(
    "/{client_uuid}",
    status_code=201,
    response_model=RecordingOut,
    responses=_error_responses(),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The take's bytes, as recorded; Content-Type names the format.",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in AUDIO_TYPES},
        }
    },
)
async def upload_recording(
    client_uuid: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
    signer: SignerDep,
    assignment_id: int = Query(description="The assignment (task) this take describes."),
    client_seconds: float | None = Query(None, ge=0, description="Length the browser measured."),
) -> RecordingOut:
    """Upload one take. The client generates the UUID, so retrying an upload (after a network failure
    or a page reload) stores exactly one recording: a repeat answers 200 with the stored one.

    The body is streamed to disk; the size limit is checked as it arrives. A refused take answers a
    JSON error with a stable `code` and a message for the annotator."""
    key = str(client_uuid)
    content_type = request.headers.get("content-type", "")
    body = request.stream()
    try:
        user, existing, target = await run_in_threadpool(
            _prepare, request, session, signer, key, assignment_id
        )
        if existing is not None:
            await _drain(body)
            response.status_code = 200
            return recording_out(existing, created=False)
        intake.suffix_for(content_type)  # refuse a wrong type before reading the body
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > intake.max_upload_bytes(settings):
            raise intake.IntakeRejected(
                f"The recording is larger than the limit of {settings.max_upload_mb:g} MB.",
                code="audio_too_large",
                status=413,
            )
        assignment, image, project = target
        meta: dict[str, Any] = {"user_agent": request.headers.get("user-agent", "")[:300]}
        if client_seconds is not None:
            meta["client_seconds"] = client_seconds

        def accept() -> tuple[Recording, bool]:
            recording, created = intake.accept_recording(
                session,
                blobs,
                settings,
                project=project,
                image=image,
                user=user,
                client_uuid=key,
                content_type=content_type,
                chunks=_sync_chunks(body),
                assignment=assignment,
                meta=meta,
            )
            session.commit()
            return recording, created

        recording, created = await anyio.to_thread.run_sync(accept, limiter=INTAKE_SLOTS)
    except VoicecapError:
        await _drain(body)
        raise
    response.status_code = 201 if created else 200
    return recording_out(recording, created)


def _prepare(
    request: Request, session: Session, signer: SessionSigner, client_uuid: str, assignment_id: int
) -> tuple[User, Recording | None, Any]:
    """The user (session cookie and CSRF checked), then the stored recording for a repeated UUID, else
    the checked (assignment, image, project).

    The user is checked here, not by the CurrentUser dependency, so that a refusal for a missing login
    or a wrong CSRF token is answered like every other refusal of an upload: after the body is drained."""
    try:
        user = current_user(request, session, signer)
        existing = intake.find_recording(session, client_uuid)
        if existing is not None:
            if existing.user_id != user.id:
                raise Conflict("This recording id belongs to another user.", code="recording_id_conflict")
            return user, existing, None
        assignment = get_own_assignment(session, user, assignment_id)
        intake.check_assignment_open(assignment, user)
        image, project = task_images(session, assignment)
        return user, None, (assignment, image, project)
    finally:
        session.commit()


def _sync_chunks(body: AsyncIterator[bytes]) -> Iterator[bytes]:
    """The request body, pulled from the event loop into this worker thread chunk by chunk."""
    while True:
        try:
            chunk = anyio.from_thread.run(body.__anext__)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk


async def _drain(body: AsyncIterator[bytes]) -> None:
    read = 0
    try:
        async for chunk in body:
            read += len(chunk)
            if read > DRAIN_LIMIT:
                return
    except Exception:
        return  # already consumed, or the client went away


@router.get("/{client_uuid}", response_model=RecordingOut)
def get_recording(client_uuid: uuid.UUID, user: AnnotatorUser, session: SessionDep) -> RecordingOut:
    """A recording by its client UUID (annotators: their own only)."""
    recording = intake.find_recording(session, str(client_uuid))
    if recording is None or not _may_see(user, recording):
        raise NotFound("No such recording.", code="recording_not_found")
    return recording_out(recording, created=False)


@router.get("/by-id/{recording_id}/audio", response_class=FileResponse)
def recording_audio(
    recording_id: int,
    request: Request,
    user: AnnotatorUser,
    session: SessionDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    kind: str = Query("original", pattern="^(original|wav)$", description="original or wav (16 kHz mono)."),
) -> Response:
    """The audio of a recording (annotators: their own only; leads: all)."""
    recording = session.get(Recording, recording_id)
    if recording is None or not _may_see(user, recording):
        raise NotFound("No such recording.", code="recording_not_found")
    key = recording.original_key if kind == "original" else recording.wav_key
    media_type = recording.content_type if kind == "original" else "audio/wav"
    missing = "The audio file of this recording is missing from the blob store."
    headers = {"Cache-Control": "private, max-age=3600"}
    return send_blob(request, blobs, settings, key, media_type, headers=headers, missing=missing)


def _may_see(user: User, recording: Recording) -> bool:
    return may_review(user) or recording.user_id == user.id
