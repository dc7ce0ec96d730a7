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
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from annotate.api.deps import (
    AnnotatorUser,
    BlobsDep,
    LeadUser,
    SessionDep,
    SettingsDep,
    SignerDep,
    current_user,
)
from annotate.api.media import send_blob
from annotate.api.take_parts import ENVELOPE_BYTES, MULTIPART, TakeParts, boundary_of
from annotate.errors import Conflict, NotFound, VoicecapError
from annotate.security import SessionSigner
from annotate.services import intake, point_sets
from annotate.services import pointing as pointing_rules
from annotate.services.assignments import get_own_assignment, task_images
from annotate.services.permissions import may_see_recording
from db.models import Recording, User
from db.settings import Settings

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
        413: {"model": ErrorOut, "description": "audio_too_large, pointing_too_large"},
        415: {"model": ErrorOut, "description": "unsupported_media_type"},
        422: {
            "model": ErrorOut,
            "description": "audio_empty, audio_undecodable, audio_too_short, audio_too_long, audio_silent, "
            "audio_bad_sample_rate, audio_bad_channels, audio_bad_frame_size; with pointing data: "
            "upload_malformed, pointing_malformed, pointing_out_of_image, pointing_time_outside_take, "
            "pointing_not_monotonic, pointing_too_many_points, pointing_too_many_samples, "
            "pointing_unknown_label, pointing_incomplete, pointing_not_expected, pointing_missing",
        },
    }


def _request_body() -> dict[str, Any]:
    audio: dict[str, Any] = {t: {"schema": {"type": "string", "format": "binary"}} for t in AUDIO_TYPES}
    multipart = {
        "schema": {
            "type": "object",
            "required": ["pointing", "audio"],
            "properties": {
                "pointing": {
                    "type": "object",
                    "description": "First part: {version: 1, traces: [[[x, y, t], ...], ...], points: "
                    "[{x, y, t, label}], absent_labels: [label]}; x and y in 0..1 of the image as "
                    "displayed, t in seconds on the take's clock.",
                },
                "audio": {"type": "string", "format": "binary", "description": "Second part: the take."},
            },
        },
        "encoding": {
            "pointing": {"contentType": "application/json"},
            "audio": {"contentType": ", ".join(AUDIO_TYPES)},
        },
    }
    return {
        "required": True,
        "description": "The take's bytes, as recorded, with Content-Type naming the format; or, for "
        "narrate and point projects, multipart/form-data with a `pointing` part then an `audio` part.",
        "content": {**audio, MULTIPART: multipart},
    }


@router.put(
    "/{client_uuid}",
    status_code=201,
    response_model=RecordingOut,
    responses=_error_responses(),
    openapi_extra={"requestBody": _request_body()},
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
    JSON error with a stable `code` and a message for the annotator.

    Narrate and point projects take multipart/form-data: a `pointing` JSON part, then the `audio`
    part. The recording, its trace and its first point set are stored together or not at all."""
    key = str(client_uuid)
    content_type = request.headers.get("content-type", "")
    multipart = intake.base_content_type(content_type) == MULTIPART
    body = request.stream()
    try:
        user, existing, target = await run_in_threadpool(
            _prepare, request, session, signer, key, assignment_id
        )
        if existing is not None:
            await _drain(body)
            response.status_code = 200
            return recording_out(existing, created=False)
        assignment, image, project = target
        # Refuse what the headers already show before reading the body.
        pointing_rules.check_expected(project.mode, multipart)
        boundary = boundary_of(content_type) if multipart else b""
        if not multipart:
            intake.suffix_for(content_type)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > _max_body(settings, multipart):
            raise intake.IntakeRejected(
                f"The recording is larger than the limit of {settings.max_upload_mb:g} MB.",
                code="audio_too_large",
                status=413,
            )
        meta: dict[str, Any] = {"user_agent": request.headers.get("user-agent", "")[:300]}
        if client_seconds is not None:
            meta["client_seconds"] = client_seconds

        def accept() -> tuple[Recording, bool]:
            take_type, chunks, pointing = content_type, _sync_chunks(body), None
            if multipart:
                limits = pointing_rules.limits_from(settings)
                parts = TakeParts(chunks, boundary, limits, _max_body(settings, multipart=True))
                raw, take_type = parts.head()
                pointing = pointing_rules.parse_pointing(raw, limits)
                chunks = parts.audio()
            recording, created = intake.accept_recording(
                session,
                blobs,
                settings,
                project=project,
                image=image,
                user=user,
                client_uuid=key,
                content_type=take_type,
                chunks=chunks,
                assignment=assignment,
                meta=meta,
                pointing=pointing,
            )
            session.commit()
            return recording, created

        recording, created = await anyio.to_thread.run_sync(accept, limiter=INTAKE_SLOTS)
    except VoicecapError:
        await _drain(body)
        raise
    response.status_code = 201 if created else 200
    return recording_out(recording, created)


def _max_body(settings: Settings, multipart: bool) -> int:
    audio = intake.max_upload_bytes(settings)
    return audio + settings.pointing_max_kb * 1024 + ENVELOPE_BYTES if multipart else audio


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
    if recording is None or not may_see_recording(user, recording):
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
    if recording is None or not may_see_recording(user, recording):
        raise NotFound("No such recording.", code="recording_not_found")
    key = recording.original_key if kind == "original" else recording.wav_key
    media_type = recording.content_type if kind == "original" else "audio/wav"
    missing = "The audio file of this recording is missing from the blob store."
    headers = {"Cache-Control": "private, max-age=3600"}
    return send_blob(request, blobs, settings, key, media_type, headers=headers, missing=missing)


# --- pointing -----------------------------------------------------------------------------------------


class PointOut(BaseModel):
    x: float = Field(description="0..1 of the image's width, as displayed.")
    y: float = Field(description="0..1 of the image's height, as displayed.")
    t: float | None = Field(description="Seconds on the take's clock; null for a point added in review.")
    label: str | None


class PointSetOut(BaseModel):
    version: int
    points: list[PointOut]
    absent_labels: list[str]
    created_by: str | None = Field(description="The reviewer's name; null for the annotator's version 1.")
    note: str
    created_at: datetime


class ImageSize(BaseModel):
    id: int
    width: int
    height: int


class TraceOut(BaseModel):
    segments: list[list[list[float]]] = Field(description="Strokes of [x, y, t] samples.")
    sample_count: int


class WordOut(BaseModel):
    start: float | None
    end: float | None
    word: str | None
    probability: float | None


class AlignmentOut(BaseModel):
    transcript_id: int
    point_set_id: int | None
    words: list[Any]
    links: list[Any]
    counts: list[Any]
    count_mismatch: bool


class PointingOut(BaseModel):
    recording_id: int
    image: ImageSize
    mode: str
    labels: list[str]
    duration_seconds: float
    trace: TraceOut
    point_sets: list[PointSetOut] = Field(description="Every version, oldest first.")
    current_version: int | None
    alignment: AlignmentOut | None = Field(description="Of the newest transcript; null before one.")
    words: list[WordOut] = Field(description="The newest transcript's words; [] before one.")


class PointsIn(BaseModel):
    base_version: int = Field(ge=1, le=1_000_000, description="The version the correction started from.")
    points: list[Any] = Field(description="[{x, y, t, label}]; t null for a point added in review.")
    absent_labels: list[Any] = []
    note: str = Field("", max_length=2000)


@router.get(
    "/{recording_id}/pointing",
    response_model=PointingOut,
    responses={404: {"model": ErrorOut, "description": "recording_not_found"}},
)
def recording_pointing(recording_id: int, user: AnnotatorUser, session: SessionDep) -> dict[str, Any]:
    """A take's trace, every version of its points and its alignment (its annotator and reviewers)."""
    return point_sets.pointing_view(session, user, recording_id)


@router.post(
    "/{recording_id}/points",
    status_code=201,
    response_model=PointingOut,
    responses={
        403: {"model": ErrorOut, "description": "wrong_role"},
        404: {"model": ErrorOut, "description": "recording_not_found"},
        409: {"model": ErrorOut, "description": "point_set_stale, pointing_not_expected"},
        422: {
            "model": ErrorOut,
            "description": "pointing_malformed, pointing_out_of_image, pointing_time_outside_take, "
            "pointing_too_many_points, pointing_unknown_label, pointing_incomplete",
        },
    },
)
def correct_points(
    recording_id: int, body: PointsIn, user: LeadUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Store a reviewer's corrected points as the next version (the earlier ones stay). Refused with
    409 `point_set_stale` when `base_version` is no longer the newest."""
    correction = point_sets.Correction(
        base_version=body.base_version,
        points=body.points,
        absent_labels=body.absent_labels,
        note=body.note,
    )
    point_sets.correct_points(session, settings, user, recording_id, correction)
    session.commit()
    return point_sets.pointing_view(session, user, recording_id)
