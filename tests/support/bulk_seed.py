"""Many captioned images at once, inserted in bulk (for tests that need an export of some size)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from db.models import Caption, Image, Project, Recording, Transcript, User
from tests.support.factories import caption_values, image_values, recording_values, transcript_values

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
        stamps = {"created_at": BASE, "updated_at": BASE}
        images.append(
            image_values(
                project.id,
                id=ident,
                sha256=sha,
                source=f"https://img.example/{ident}.jpg",
                blob_key=f"{sha[:2]}/{sha[2:4]}/{sha}.jpg",
                thumb_key="",
                width=640,
                height=480,
                meta={},
                done_count=1,
                **stamps,
            )
        )
        text = f"spoken description number {ident} " * 8
        recordings.append(
            recording_values(
                project.id,
                ident,
                user.id,
                id=ident,
                source="import",
                original_key=f"au/di/{ident}.webm",
                content_type="audio/webm",
                wav_key=f"au/di/{ident}.wav",
                size_bytes=1000,
                duration_seconds=70.0,
                meta={},
                status="captioned",
                next_attempt_at=BASE,
                **stamps,
            )
        )
        transcripts.append(
            transcript_values(
                ident,
                text,
                id=ident,
                segments=[{"start": 0.0, "end": 70.0, "text": text}],
                flags=[],
                **stamps,
            )
        )
        captions.append(
            caption_values(
                ident,
                text.capitalize(),
                id=ident,
                recording_id=ident,
                transcript_id=ident,
                dedupe_key=f"bulk:{ident}",
                unsupported_words=[],
                flags=[],
                status="approved",
                **stamps,
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
    if session.get_bind().dialect.name == "postgresql":
        # Statistics now, not whenever autovacuum gets to it: without them, on a busy machine, the
        # planner takes 40,000 fresh rows for a dozen and reads every approved caption per image.
        with session.get_bind().connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "ANALYZE images, recordings, transcripts, captions"
            )
    return [image["id"] for image in images]
