"""Recording rows for worker tests, made directly: a project, an image, an annotator, and real speech.

The speech is the committed espeak-ng fixtures (tests/fixtures/speech), stored the way intake stores
it: a 16 kHz mono 16-bit WAV in the blob store, named by Recording.wav_key.
"""

from __future__ import annotations

import io
import json
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from db.blobstore import BlobStore
from db.models import Image, Project, Recording, Role, User

SPEECH = Path(__file__).resolve().parent.parent / "fixtures" / "speech"


@dataclass(frozen=True)
class Clip:
    file: str
    text: str
    audio: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.audio) / 16000


def speech_clips() -> list[Clip]:
    from transcribe.audio import decode_audio

    meta = json.loads((SPEECH / "clips.json").read_text())
    return [Clip(m["file"], m["text"], decode_audio(SPEECH / m["file"])) for m in meta]


def wav_bytes(audio: np.ndarray) -> bytes:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(pcm.tobytes())
    return out.getvalue()


@dataclass
class Fixture:
    project_id: int
    image_id: int
    user_id: int


def make_fixture(session: Session, name: str = "worker-test", language: str = "en") -> Fixture:
    project = Project(name=name, language=language)
    user = User(name=f"{name}-annotator", role=Role.annotator, password_hash="x", pseudonym=uuid.uuid4().hex)
    session.add_all([project, user])
    session.flush()
    image = Image(
        project_id=project.id,
        sha256=uuid.uuid4().hex * 2,
        source="test.jpg",
        blob_key="aa/bb/image",
        thumb_key="aa/bb/thumb",
        width=10,
        height=10,
        format="JPEG",
    )
    session.add(image)
    session.flush()
    session.commit()
    return Fixture(project.id, image.id, user.id)


def add_recording(
    session: Session, blobs: BlobStore, fixture: Fixture, audio: np.ndarray | bytes, **fields: object
) -> Recording:
    """A Recording in `uploaded` whose WAV blob holds `audio` (samples, or raw bytes as stored)."""
    data = audio if isinstance(audio, bytes) else wav_bytes(audio)
    key, _ = blobs.put_bytes(data, suffix=".wav")
    seconds = len(audio) / 16000 if not isinstance(audio, bytes) else 1.0
    recording = Recording(
        client_uuid=str(uuid.uuid4()),
        project_id=fixture.project_id,
        image_id=fixture.image_id,
        user_id=fixture.user_id,
        original_key=key,
        content_type="audio/wav",
        wav_key=key,
        size_bytes=len(data),
        duration_seconds=seconds,
        loudness_dbfs=-20.0,
        silence_fraction=0.1,
        **fields,
    )
    session.add(recording)
    session.commit()
    return recording
