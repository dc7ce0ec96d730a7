"""The one way tests and bench scripts make rows: projects, users, images, recordings, transcripts,
captions and reviews, and a take's pointing (traces, point sets, alignments).

Each `*_values` function returns a row's attributes with sensible defaults, overridden by keyword; the
`add_*` functions build the ORM object from them, add it and flush (the caller commits). Bulk seeders
pass the same dicts to `session.execute(insert(Model), rows)`, so a column's default is written once.
With `blobs` and real bytes (or a file), an image or recording is stored the way ingest and intake
store it, and its keys, sha256 and size come from the blob store.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from annotate.services import users as user_service
from annotate.services.export.pointing import point_set_export
from annotate.services.projects import ProjectSpec, create_project
from db.blobstore import BlobStore
from db.models import (
    Caption,
    CaptionKind,
    Image,
    PointingAlignment,
    PointSet,
    Project,
    Recording,
    Review,
    ReviewDecision,
    Role,
    Trace,
    Transcript,
    User,
)

AUDIO_TYPES = {".wav": "audio/wav", ".webm": "audio/webm"}


def add_project(session: Session, name: str = "project", **spec: Any) -> Project:
    """A project made by the real service (its validation and default questions); flushed."""
    return create_project(session, ProjectSpec(name=name, **spec))


def user_values(name: str, role: Role | str = Role.annotator, **fields: Any) -> dict[str, Any]:
    """A user row; its password hash matches no password unless one is given."""
    return {
        "name": name,
        "role": Role(role),
        "password_hash": "!",
        "pseudonym": secrets.token_hex(8),
        **fields,
    }


def add_user(
    session: Session, name: str, role: Role | str = Role.annotator, password: str | None = None
) -> User:
    """With a password, a user made by the real service who can log in; without, a row no one can log in as
    (no password hashing, so tests that need many users stay fast). Flushed."""
    if password is not None:
        return user_service.add_user(session, name, role, password).user
    user = User(**user_values(name, role))
    session.add(user)
    session.flush()
    return user


def image_values(project_id: int, **fields: Any) -> dict[str, Any]:
    sha = fields.get("sha256") or uuid.uuid4().hex * 2
    return {
        "project_id": project_id,
        "sha256": sha,
        "source": f"test://{sha[:12]}.jpg",
        "blob_key": "k",
        "thumb_key": "t",
        "width": 10,
        "height": 10,
        "format": "JPEG",
        **fields,
    }


def add_image(
    session: Session,
    project: Project,
    *,
    blobs: BlobStore | None = None,
    data: bytes | Path | None = None,
    suffix: str = ".jpg",
    **fields: Any,
) -> Image:
    """An image row; with `blobs` and `data` (bytes, or a file) its bytes stored, keys and sha256 theirs."""
    stored: dict[str, Any] = {}
    if data is not None:
        if blobs is None:
            raise ValueError("add_image needs blobs to store data")
        key, sha = (
            blobs.put_file(data, suffix=data.suffix)
            if isinstance(data, Path)
            else blobs.put_bytes(data, suffix=suffix)
        )
        stored = {"sha256": sha, "blob_key": key, "thumb_key": key}
    image = Image(**image_values(project.id, **{**stored, **fields}))
    session.add(image)
    session.flush()
    return image


def recording_values(project_id: int, image_id: int, user_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "client_uuid": str(uuid.uuid4()),
        "project_id": project_id,
        "image_id": image_id,
        "user_id": user_id,
        "original_key": "o",
        "content_type": "audio/wav",
        "wav_key": "w",
        "size_bytes": 1,
        "duration_seconds": 60.0,
        "loudness_dbfs": -20.0,
        "silence_fraction": 0.1,
        **fields,
    }


def add_recording(
    session: Session,
    image: Image,
    user: User,
    *,
    blobs: BlobStore | None = None,
    audio: bytes | Path | None = None,
    **fields: Any,
) -> Recording:
    """A take by `user` on `image` (status `uploaded` unless given); with `blobs` and `audio` (WAV bytes, or
    a file) the audio is stored as intake stores it, under both keys, and its size and type are its own."""
    stored: dict[str, Any] = {}
    if audio is not None:
        if blobs is None:
            raise ValueError("add_recording needs blobs to store audio")
        if isinstance(audio, Path):
            key, _ = blobs.put_file(audio, suffix=audio.suffix)
            size, kind = audio.stat().st_size, AUDIO_TYPES[audio.suffix]
        else:
            key, _ = blobs.put_bytes(audio, suffix=".wav")
            size, kind = len(audio), "audio/wav"
        stored = {"original_key": key, "wav_key": key, "size_bytes": size, "content_type": kind}
    recording = Recording(**recording_values(image.project_id, image.id, user.id, **{**stored, **fields}))
    session.add(recording)
    session.flush()
    return recording


def transcript_values(
    recording_id: int, text: str = "a red boat in a harbour", **fields: Any
) -> dict[str, Any]:
    return {
        "recording_id": recording_id,
        "revision": 1,
        "text": text,
        "language": "en",
        "segments": [{"start": 0.0, "end": 2.5, "text": text}],
        "engine": "faster-whisper",
        "model": "tiny.en",
        "engine_version": "1.1",
        "word_count": len(text.split()),
        **fields,
    }


def add_transcript(
    session: Session, recording: Recording, text: str = "a red boat in a harbour", **fields: Any
) -> Transcript:
    transcript = Transcript(**transcript_values(recording.id, text, **fields))
    session.add(transcript)
    session.flush()
    return transcript


def caption_values(
    image_id: int,
    text: str = "A red boat in a harbour.",
    *,
    kind: CaptionKind = CaptionKind.single,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "recording_id": None,
        "transcript_id": None,
        "kind": kind,
        "dedupe_key": f"{kind.value}:{uuid.uuid4().hex}",
        "text": text,
        "cleaner": "rules",
        "prompt_version": "v1",
        "word_count": len(text.split()),
        **fields,
    }


def add_caption(
    session: Session,
    image: Image,
    text: str = "A red boat in a harbour.",
    *,
    transcript: Transcript | None = None,
    **fields: Any,
) -> Caption:
    """A caption of `image` (status `pending` unless given), cleaned from `transcript` when one is named."""
    source = {"recording_id": transcript.recording_id, "transcript_id": transcript.id} if transcript else {}
    caption = Caption(**caption_values(image.id, text, **{**source, **fields}))
    session.add(caption)
    session.flush()
    return caption


def add_review(
    session: Session, caption: Caption, reviewer: User, decision: ReviewDecision, **fields: Any
) -> Review:
    review = Review(caption_id=caption.id, reviewer_id=reviewer.id, decision=decision, **fields)
    session.add(review)
    session.flush()
    return review


def trace_values(recording_id: int, segments: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A trace row; by default one short stroke of three samples. `sample_count` follows `segments`."""
    strokes = segments if segments is not None else [[[0.25, 0.25, 0.5], [0.5, 0.5, 1.0], [0.75, 0.75, 1.5]]]
    return {
        "recording_id": recording_id,
        "segments": strokes,
        "sample_count": sum(len(stroke) for stroke in strokes),
        **fields,
    }


def add_trace(
    session: Session, recording: Recording, segments: list[Any] | None = None, **fields: Any
) -> Trace:
    trace = Trace(**trace_values(recording.id, segments, **fields))
    session.add(trace)
    session.flush()
    return trace


def point_values(x: float, y: float, t: float | None = None, label: str | None = None) -> dict[str, Any]:
    """One point as a point set stores it."""
    return {"x": x, "y": y, "t": t, "label": label}


def point_set_values(
    recording_id: int,
    points: list[dict[str, Any]] | None = None,
    *,
    version: int = 1,
    **fields: Any,
) -> dict[str, Any]:
    """A point set; by default version 1 (the annotator's) with one unlabelled point."""
    return {
        "recording_id": recording_id,
        "version": version,
        "points": points if points is not None else [point_values(0.5, 0.5, 1.0)],
        "absent_labels": [],
        "created_by": None,
        "note": "",
        **fields,
    }


def add_point_set(
    session: Session,
    recording: Recording,
    points: list[dict[str, Any]] | None = None,
    *,
    version: int = 1,
    created_by: User | None = None,
    rendered: bool = True,
    **fields: Any,
) -> PointSet:
    """A version of a take's points; a reviewer's correction names `created_by`. Stored rendered for the
    export as the app's writers store it, unless not `rendered` (as before migration 0010)."""
    by = {"created_by": created_by.id} if created_by is not None else {}
    values = point_set_values(recording.id, points, version=version, **{**by, **fields})
    if rendered:
        values["export_groups"], values["points_text"] = point_set_export(
            values["points"], values["absent_labels"], recording.id
        )
    point_set = PointSet(**values)
    session.add(point_set)
    session.flush()
    return point_set


def pointing_alignment_values(transcript_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "transcript_id": transcript_id,
        "point_set_id": None,
        "words": [],
        "links": [],
        "counts": [],
        "count_mismatch": False,
        **fields,
    }


def add_pointing_alignment(
    session: Session,
    transcript: Transcript,
    point_set: PointSet | None = None,
    **fields: Any,
) -> PointingAlignment:
    ps = {"point_set_id": point_set.id} if point_set is not None else {}
    alignment = PointingAlignment(**pointing_alignment_values(transcript.id, **{**ps, **fields}))
    session.add(alignment)
    session.flush()
    return alignment
