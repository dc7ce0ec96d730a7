"""Import recordings made elsewhere: a JSON Lines manifest of (image, audio, annotator[, metadata,
pointing]).

A narrate or point project's take needs its pointing data, as a browser upload does: `pointing` is the
same JSON object as the upload's `pointing` part (docs/architecture.md, "Pointing"), inline or as the
path of a JSON file (relative to the manifest), checked by the same rules with the same codes.

Each line goes through the same intake as a browser upload (annotate.services.intake): size limit,
decoding, duration and silence checks, a 16 kHz WAV for the workers. The recording's client UUID is
derived from project, image, audio content and annotator, so running the same import twice adds
nothing the second time. Each line commits on its own: a large import that stops half-way keeps what
it did, and re-running it picks up the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotate.errors import VoicecapError
from annotate.services.intake import accept_recording, find_recording
from annotate.services.jsonl import read_jsonl
from annotate.services.pointing import Pointing, limits_from, parse_pointing
from db.blobstore import Blobs
from db.models import Image, Project, User
from db.settings import Settings

# Recordings imported with the same (project, image, audio, annotator) get the same client UUID.
IMPORT_NAMESPACE = uuid.UUID("5b0f3a52-7c1e-4d8e-9a51-6f1c2b7de4a0")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024

CONTENT_TYPE_BY_SUFFIX = {
    ".webm": "audio/webm",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
}


@dataclass
class ImportSummary:
    added: int = 0
    duplicate: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    recording_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "duplicate": self.duplicate, "rejected": self.rejected}


class LineRejected(VoicecapError):
    code = "invalid_line"
    status = 422


def import_client_uuid(project: Project, image: Image, audio_sha256: str, annotator: str) -> str:
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"{project.id}:{image.sha256}:{audio_sha256}:{annotator}"))


def content_type_for(path: Path) -> str:
    # An unknown suffix is passed on as is: intake refuses it with its own message.
    return CONTENT_TYPE_BY_SUFFIX.get(
        path.suffix.lower(), f"application/x-{path.suffix.lstrip('.') or 'none'}"
    )


def import_audio(
    session: Session,
    blobs: Blobs,
    settings: Settings,
    project: Project,
    manifest: Path,
    on_line: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import every line of `manifest`; bad lines are reported, never fatal. Commits per line."""
    summary = ImportSummary()
    lookup = _Lookup(session, project, manifest.parent)
    session.commit()  # no transaction held while audio is read and decoded
    for line in read_jsonl(manifest):
        audio_path: Path | None = None
        try:
            if line.row is None:
                raise LineRejected(str(line.problem), code="invalid_json")
            audio_path = _audio_path(line.row, manifest.parent)
            recording_id, created = _import_one(session, blobs, settings, lookup, line.row, audio_path)
        except VoicecapError as exc:
            session.rollback()
            summary.rejected.append(_rejection(line.number, audio_path, exc.code, exc.message))
        except OSError as exc:
            session.rollback()
            summary.rejected.append(
                _rejection(line.number, audio_path, "unreadable", exc.strerror or str(exc))
            )
        else:
            session.commit()
            summary.recording_ids.append(recording_id)
            if created:
                summary.added += 1
            else:
                summary.duplicate += 1
        if on_line:
            on_line(line.number)
    return summary


def _import_one(
    session: Session,
    blobs: Blobs,
    settings: Settings,
    lookup: _Lookup,
    entry: dict[str, Any],
    audio_path: Path,
) -> tuple[int, bool]:
    image = lookup.image(entry.get("image"))
    user = lookup.user(entry.get("annotator"))
    metadata = entry.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise LineRejected("`metadata` must be a JSON object.")
    pointing = _pointing(entry.get("pointing"), lookup.base, settings)
    audio_sha = _sha256(audio_path)
    client_uuid = import_client_uuid(lookup.project, image, audio_sha, user.name)
    existing = find_recording(session, client_uuid)
    if existing is not None:
        return existing.id, False
    session.commit()  # end the read transaction before the slow part (decoding, measuring)
    with audio_path.open("rb") as audio:
        recording, created = accept_recording(
            session,
            blobs,
            settings,
            project=lookup.project,
            image=image,
            user=user,
            client_uuid=client_uuid,
            content_type=content_type_for(audio_path),
            chunks=iter(lambda: audio.read(CHUNK), b""),
            source="import",
            meta={**metadata, "imported_from": str(entry["audio"])},
            pointing=pointing,
        )
    return recording.id, created


class _Lookup:
    """Images and users by the names a manifest uses, cached for the length of the import."""

    def __init__(self, session: Session, project: Project, base: Path) -> None:
        self.session = session
        self.project = project
        self.base = base
        self._images: dict[str, Image] = {}
        self._users: dict[str, User] = {}

    def image(self, value: Any) -> Image:
        if not isinstance(value, str) or not value.strip():
            raise LineRejected("`image` (the image's path as ingested, or its sha256) is required.")
        value = value.strip()
        if value not in self._images:
            self._images[value] = self._find_image(value)
        return self._images[value]

    def _find_image(self, value: str) -> Image:
        in_project = select(Image).where(Image.project_id == self.project.id)
        if SHA256.match(value.lower()):
            found = self.session.scalar(in_project.where(Image.sha256 == value.lower()))
            if found is not None:
                return found
        candidates = [value]
        path = Path(value).expanduser()
        for base in (self.base, Path.cwd()):
            joined = path if path.is_absolute() else base / path
            # ingest records str(path.absolute()); symlinks may make resolve() differ from it
            candidates += [str(joined.absolute()), str(joined.resolve())]
        for candidate in dict.fromkeys(candidates):
            found = self.session.scalar(
                in_project.where(Image.source == candidate).order_by(Image.id).limit(1)
            )
            if found is not None:
                return found
        raise LineRejected(
            f"No image {value!r} in project {self.project.name!r} (give its path as ingested or its sha256).",
            code="unknown_image",
        )

    def user(self, value: Any) -> User:
        if not isinstance(value, str) or not value.strip():
            raise LineRejected("`annotator` (an existing user's name) is required.")
        if value not in self._users:
            found = self.session.scalar(select(User).where(User.name == value.strip()))
            if found is None:
                raise LineRejected(
                    f"No user named {value!r}; add them with `voicecap user add`.", code="unknown_annotator"
                )
            self._users[value] = found
        return self._users[value]


def _audio_path(entry: dict[str, Any], base: Path) -> Path:
    value = entry.get("audio")
    if not isinstance(value, str) or not value.strip():
        raise LineRejected("`audio` (the audio file's path) is required.")
    path = Path(value.strip()).expanduser()
    # Relative paths are relative to the manifest, so a folder of audio plus its manifest can move.
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise LineRejected(f"audio file not found: {path}", code="audio_not_found")
    return path


def _pointing(value: Any, base: Path, settings: Settings) -> Pointing | None:
    """The line's pointing data (an object, or a JSON file's path), parsed as an upload's part is."""
    if value is None:
        return None
    if isinstance(value, str):
        path = Path(value.strip()).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise LineRejected(f"pointing file not found: {path}", code="pointing_not_found")
        raw = path.read_bytes()
    elif isinstance(value, dict):
        raw = json.dumps(value).encode()
    else:
        raise LineRejected("`pointing` must be a JSON object or the path of a JSON file.")
    return parse_pointing(raw, limits_from(settings))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _rejection(number: int, path: Path | None, code: str, reason: str) -> dict[str, Any]:
    rejected: dict[str, Any] = {"line": number}
    if path is not None:
        rejected["path"] = str(path)
    rejected.update({"code": code, "reason": reason})
    return rejected
