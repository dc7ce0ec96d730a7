"""Recording rows for worker tests, made directly: a project, an image, an annotator, and real speech.

The speech is the committed espeak-ng fixtures (tests/fixtures/speech), stored the way intake stores
it: a 16 kHz mono 16-bit WAV in the blob store, named by Recording.wav_key.
"""

from __future__ import annotations

import io
import json
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from db.blobstore import BlobStore
from db.models import Image, Recording, User
from tests.support import factories

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
    project = factories.add_project(session, name, language=language)
    user = factories.add_user(session, f"{name}-annotator")
    image = factories.add_image(session, project, source="test.jpg")
    session.commit()
    return Fixture(project.id, image.id, user.id)


def add_recording(
    session: Session, blobs: BlobStore, fixture: Fixture, audio: np.ndarray | bytes, **fields: object
) -> Recording:
    """A committed Recording in `uploaded` whose WAV blob holds `audio` (samples, or raw bytes as stored)."""
    data = audio if isinstance(audio, bytes) else wav_bytes(audio)
    seconds = len(audio) / 16000 if not isinstance(audio, bytes) else 1.0
    image, user = session.get_one(Image, fixture.image_id), session.get_one(User, fixture.user_id)
    recording = factories.add_recording(
        session, image, user, blobs=blobs, audio=data, duration_seconds=seconds, **fields
    )
    session.commit()
    return recording


def add_speech_takes(
    session: Session, blobs: BlobStore, fixture: Fixture, count: int, seconds: float = 6.0
) -> list[int]:
    """`count` committed takes, each the first `seconds` of a speech clip in turn; their ids."""
    clips = speech_clips()
    samples = int(seconds * 16000)
    return [
        add_recording(session, blobs, fixture, clips[i % len(clips)].audio[:samples]).id for i in range(count)
    ]
