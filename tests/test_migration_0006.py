"""Migration 0006 (crashes counted apart from errors) up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import column, insert, inspect, select, table
from sqlalchemy.orm import Session

from db.migrate import SchemaOutOfDate, check_schema, current_revision, upgrade
from db.models import Caption, Recording, RecordingStatus, Transcript
from db.session import get_engine
from db.settings import Settings
from tests.test_db import (
    _downgrade,
    _insert_recordings_as_in_database,
    _seed_as_in_database,
    _transcript_values,
)

NEW = {"errors", "crashes", "crashes_alone", "isolated"}
# status, attempts -> errors after the upgrade: waiting rows keep their budget (every claim was an
# attempt until now), a claimed row's current claim is not an error, finished rows start from zero.
CASES = [
    (RecordingStatus.uploaded, 2, 2),
    (RecordingStatus.transcribed, 1, 1),
    (RecordingStatus.transcribing, 2, 1),
    (RecordingStatus.cleaning, 0, 0),
    (RecordingStatus.captioned, 2, 0),
    (RecordingStatus.failed, 3, 0),
]


def test_migration_0006_adds_crash_counters_keeps_budgets_and_downgrades(settings: Settings) -> None:
    engine = get_engine()
    upgrade(engine, "0002")
    with pytest.raises(SchemaOutOfDate, match="revision 0002"):
        check_schema(engine)
    with Session(engine) as session:
        image, user = _seed_as_in_database(session)
        image_id = image.id
        rows = [{"status": status.value, "attempts": n} for status, n, _ in CASES]
        first = _insert_recordings_as_in_database(session, image, user.id, rows)[0]
    old = table("recordings", column("id"), column("status"), column("attempts"))
    with Session(engine) as session:
        transcripts = table("transcripts", *(column(c.name, c.type) for c in Transcript.__table__.c))
        session.execute(insert(transcripts), [_transcript_values(first, 1, [])])
        transcript_id = session.scalars(select(transcripts.c.id)).one()
        session.add(
            Caption(image_id=image_id, transcript_id=transcript_id, dedupe_key="k", text="t", cleaner="rules")
        )
        session.commit()

    upgrade(engine)

    check_schema(engine)
    with Session(engine) as session:
        got = session.execute(
            select(
                Recording.status,
                Recording.attempts,
                Recording.errors,
                Recording.crashes,
                Recording.crashes_alone,
                Recording.isolated,
            ).order_by(Recording.id)
        ).all()
    assert [tuple(r) for r in got] == [(s, n, errors, 0, 0, False) for s, n, errors in CASES]

    _downgrade(engine, "0002")

    assert current_revision(engine) == "0002"
    assert not NEW & {c["name"] for c in inspect(engine).get_columns("recordings")}
    with engine.connect() as conn:  # the rows, and what hangs off them, survived (no table copy)
        assert conn.execute(select(old.c.status, old.c.attempts).order_by(old.c.id)).all() == [
            (s.value, n) for s, n, _ in CASES
        ]
        assert conn.scalar(select(column("transcript_id")).select_from(table("captions"))) == transcript_id
    upgrade(engine)  # and up again
    check_schema(engine)
