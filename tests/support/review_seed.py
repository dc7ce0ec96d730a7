"""Rows for review, QC and stats tests: real images, a real take, and its real Whisper word timings.

BOATS_SEGMENTS and BOATS_WORDS are faster-whisper tiny.en's output (word_timestamps=True, beam 1) for
tests/fixtures/speech/boats.wav, stored so these tests need no model, split as the transcripts table
keeps them: segments without their words, and the words in one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from db.blobstore import BlobStore
from db.models import Caption, Image, Project, Recording, RecordingStatus, Transcript, User, utcnow
from tests.support import factories

TESTS = Path(__file__).resolve().parent.parent
SPEECH = TESTS / "fixtures" / "speech"
IMAGES = TESTS.parent / "examples" / "images"
PASSWORD = "correct-horse"


def _w(start: float, end: float, word: str, p: float) -> dict[str, Any]:
    return {"start": start, "end": end, "word": word, "probability": p}


_BOATS_WHISPER: list[dict[str, Any]] = [
    {
        "start": 0.0,
        "end": 6.42,
        "text": " In this photo there are three red boats on a calm lake. Behind them two tall green trees",
        "words": [
            _w(0.0, 0.68, " In", 0.733),
            _w(0.68, 0.94, " this", 0.967),
            _w(0.94, 1.22, " photo", 0.625),
            _w(1.22, 1.46, " there", 0.704),
            _w(1.46, 1.66, " are", 0.998),
            _w(1.66, 1.94, " three", 0.703),
            _w(1.94, 2.18, " red", 0.833),
            _w(2.18, 2.52, " boats", 0.674),
            _w(2.52, 2.78, " on", 0.993),
            _w(2.78, 2.96, " a", 0.876),
            _w(2.96, 3.2, " calm", 0.239),
            _w(3.2, 3.88, " lake.", 0.929),
            _w(4.14, 4.38, " Behind", 0.958),
            _w(4.38, 5.1, " them", 0.919),
            _w(5.1, 5.46, " two", 0.426),
            _w(5.46, 5.74, " tall", 0.978),
            _w(5.74, 6.06, " green", 0.941),
            _w(6.06, 6.42, " trees", 0.984),
        ],
    },
    {
        "start": 6.42,
        "end": 11.78,
        "text": " and next to a small white house with a blue door. The sky is clear and bright.",
        "words": [
            _w(6.42, 6.88, " and", 0.119),
            _w(6.88, 7.24, " next", 0.724),
            _w(7.24, 7.5, " to", 0.967),
            _w(7.5, 7.7, " a", 0.993),
            _w(7.7, 7.9, " small", 0.996),
            _w(7.9, 8.24, " white", 0.804),
            _w(8.24, 8.54, " house", 0.998),
            _w(8.54, 8.74, " with", 0.887),
            _w(8.74, 8.92, " a", 0.976),
            _w(8.92, 9.14, " blue", 0.988),
            _w(9.14, 9.6, " door.", 0.843),
            _w(10.1, 10.12, " The", 0.95),
            _w(10.12, 10.36, " sky", 0.998),
            _w(10.36, 10.62, " is", 0.989),
            _w(10.62, 11.0, " clear", 0.995),
            _w(11.0, 11.36, " and", 0.936),
            _w(11.36, 11.78, " bright.", 0.659),
        ],
    },
]
BOATS_SEGMENTS = [{k: v for k, v in s.items() if k != "words"} for s in _BOATS_WHISPER]
BOATS_WORDS = [w for s in _BOATS_WHISPER for w in s["words"]]
BOATS_TEXT = "".join(s["text"] for s in BOATS_SEGMENTS).strip()
BOATS_CAPTION = (
    "Three red boats float on a calm lake. Behind them stand two tall green trees next to a small white "
    "house with a blue door. The sky is clear and bright."
)


@dataclass
class Seeded:
    project: Project
    lead: User
    annotators: list[User]
    images: list[Image] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    transcripts: list[Transcript] = field(default_factory=list)
    captions: list[Caption] = field(default_factory=list)


def add_image(session: Session, blobs: BlobStore, project: Project, path: Path) -> Image:
    return factories.add_image(
        session, project, blobs=blobs, data=path, source=str(path), width=512, height=512, done_count=1
    )


def add_take(
    session: Session,
    blobs: BlobStore,
    image: Image,
    user: User,
    *,
    caption_text: str = BOATS_CAPTION,
    duration: float = 12.51,
    silence: float = 0.12,
    words_per_minute: float = 150.0,
    faithfulness: float | None = 0.97,
    flags: list[str] | None = None,
    created_at: datetime | None = None,
) -> tuple[Recording, Transcript, Caption]:
    """A captioned take of boats.wav by `user` on `image`, with its transcript and pending caption."""
    when = created_at or utcnow()
    recording = factories.add_recording(
        session,
        image,
        user,
        blobs=blobs,
        audio=SPEECH / "boats.wav",
        duration_seconds=duration,
        loudness_dbfs=-21.5,
        silence_fraction=silence,
        status=RecordingStatus.captioned,
        created_at=when,
    )
    transcript = factories.add_transcript(
        session,
        recording,
        BOATS_TEXT,
        segments=BOATS_SEGMENTS,
        words=BOATS_WORDS,
        audio_seconds=duration,
        word_count=len(BOATS_WORDS),
        words_per_minute=words_per_minute,
        created_at=when,
    )
    caption = factories.add_caption(
        session,
        image,
        caption_text,
        transcript=transcript,
        faithfulness=faithfulness,
        flags=flags or [],
        flagged=bool(flags),
        created_at=when + timedelta(seconds=30),
    )
    return recording, transcript, caption


def seed(session: Session, blobs: BlobStore, *, takes: int = 3) -> Seeded:
    """A project, a lead, two annotators and `takes` captioned takes (the second one flagged); committed."""
    project = factories.add_project(session, "Harbour", min_seconds=5.0, max_seconds=120.0)
    lead = factories.add_user(session, "lena", "lead", PASSWORD)
    annotators = [factories.add_user(session, name, "annotator", PASSWORD) for name in ("ann", "bob")]
    seeded = Seeded(project=project, lead=lead, annotators=annotators)
    pictures = sorted(IMAGES.glob("*.jpg"))
    for index in range(takes):
        image = add_image(session, blobs, project, pictures[index % len(pictures)])
        flagged = index == 1
        recording, transcript, caption = add_take(
            session,
            blobs,
            image,
            annotators[index % 2],
            caption_text=BOATS_CAPTION + (" A pirate flag flies from the mast." if flagged else ""),
            faithfulness=0.81 if flagged else 0.97,
            flags=["unsupported_content"] if flagged else None,
        )
        seeded.images.append(image)
        seeded.recordings.append(recording)
        seeded.transcripts.append(transcript)
        seeded.captions.append(caption)
    session.commit()
    return seeded
