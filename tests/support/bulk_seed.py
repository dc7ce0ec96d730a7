"""Many captioned images at once, inserted in bulk (for tests that need an export of some size)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from db.models import Caption, Image, Project, Recording, Transcript, User

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def bulk_captioned(session: Session, project: Project, user: User, count: int) -> list[int]:
    """`count` approved images with a recording, transcript and caption each, inserted in bulk; their ids."""
    # Ids above every table's largest, so one id can name an image and its recording, transcript, caption.
    base = max(
        int(session.scalar(select(func.max(m.id))) or 0) for m in (Image, Recording, Transcript, Caption)
    )
    images, recordings, transcripts, captions = [], [], [], []
    for n in range(1, count + 1):
        ident = base + n
        sha = uuid.uuid5(uuid.NAMESPACE_OID, str(ident)).hex * 2
        images.append(
            dict(
                id=ident,
                project_id=project.id,
                sha256=sha,
                source=f"https://img.example/{ident}.jpg",
                blob_key=f"{sha[:2]}/{sha[2:4]}/{sha}.jpg",
                thumb_key="",
                width=640,
                height=480,
                format="JPEG",
                meta={},
                done_count=1,
                created_at=BASE,
                updated_at=BASE,
            )
        )
        text = f"spoken description number {ident} " * 8
        recordings.append(
            dict(
                id=ident,
                client_uuid=str(uuid.uuid4()),
                project_id=project.id,
                image_id=ident,
                user_id=user.id,
                source="import",
                original_key=f"au/di/{ident}.webm",
                content_type="audio/webm",
                wav_key=f"au/di/{ident}.wav",
                size_bytes=1000,
                duration_seconds=70.0,
                loudness_dbfs=-20.0,
                silence_fraction=0.1,
                meta={},
                status="captioned",
                created_at=BASE,
                updated_at=BASE,
                next_attempt_at=BASE,
            )
        )
        transcripts.append(
            dict(
                id=ident,
                recording_id=ident,
                revision=1,
                text=text,
                language="en",
                segments=[{"start": 0.0, "end": 70.0, "text": text}],
                engine="faster-whisper",
                model="tiny.en",
                engine_version="1.1",
                flags=[],
                created_at=BASE,
                updated_at=BASE,
            )
        )
        captions.append(
            dict(
                id=ident,
                image_id=ident,
                recording_id=ident,
                transcript_id=ident,
                kind="single",
                dedupe_key=f"bulk:{ident}",
                text=text.capitalize(),
                cleaner="rules",
                prompt_version="v1",
                unsupported_words=[],
                flags=[],
                status="approved",
                created_at=BASE,
                updated_at=BASE,
            )
        )
    for model, rows in (
        (Image, images),
        (Recording, recordings),
        (Transcript, transcripts),
        (Caption, captions),
    ):
        session.execute(insert(model), rows)
    session.commit()
    return [image["id"] for image in images]
