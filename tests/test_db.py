from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import JSON, Engine, Integer, column, insert, inspect, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import SchemaOutOfDate, alembic_config, check_schema, current_revision, head_revision, upgrade
from db.models import Caption, Image, Project, Recording, RecordingStatus, Transcript, User, utcnow
from db.queue import STAGES, claim, complete, counts_by_status, fail, heartbeat, requeue_failed
from db.session import get_engine
from db.settings import Settings
from tests.support import factories


def _insert_recordings_as_in_database(
    session: Session, image: Image | SimpleNamespace, user_id: int, rows: list[dict[str, Any]]
) -> list[int]:
    """Recordings in a database at an older revision, naming only the columns it has (the model's
    later columns would make an ORM insert fail). Each row's values override a plain uploaded take."""
    present = {c["name"] for c in inspect(session.connection()).get_columns("recordings")}
    recordings = table(
        "recordings", *(column(c.name, c.type) for c in Recording.__table__.c if c.name in present)
    )
    now = utcnow()
    base = {
        **{
            k: v
            for k, v in factories.recording_values(image.project_id, image.id, user_id).items()
            if k in present
        },
        "metadata": {},
        "source": "browser",
        "status": RecordingStatus.uploaded.value,
        "revision": 1,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    values = [
        {**base, "client_uuid": f"00000000-0000-0000-0000-{i:012d}", **row} for i, row in enumerate(rows)
    ]
    ids = [
        session.execute(insert(recordings).values(v).returning(recordings.c.id)).scalar_one() for v in values
    ]
    session.commit()
    return ids


def _insert_as_in_database(session: Session, model: type[Any], values: dict[str, Any]) -> int:
    """One row of `model`'s table in a database at an older revision, naming only the columns it has."""
    name = model.__tablename__
    present = {c["name"] for c in inspect(session.connection()).get_columns(name)}
    now = utcnow()
    row = {"created_at": now, "updated_at": now, **values}
    old = table(name, *(column(c.name, c.type) for c in model.__table__.c if c.name in present))
    return session.execute(
        insert(old).values({k: v for k, v in row.items() if k in present}).returning(old.c.id)
    ).scalar_one()


def _seed_as_in_database(session: Session) -> tuple[SimpleNamespace, User]:
    """A project, an image and an annotator in a database at an older revision (the ORM would name
    columns added since)."""
    project_id = _insert_as_in_database(
        session,
        Project,
        {
            "name": "p",
            "instructions": "",
            "questions": ["What is it?"],
            "min_seconds": 30.0,
            "max_seconds": 120.0,
            "per_image": 1,
            "language": "en",
        },
    )
    image_values = {**factories.image_values(project_id), "metadata": {}, "done_count": 0}
    image_id = _insert_as_in_database(session, Image, image_values)
    user = factories.add_user(session, "ann")
    session.commit()
    return SimpleNamespace(id=image_id, project_id=project_id), user


def _seed(session: Session, n_recordings: int = 0) -> tuple[Project, Image, User]:
    project = factories.add_project(session, "p", questions=["What is it?"])
    user = factories.add_user(session, "ann")
    image = factories.add_image(session, project)
    for _ in range(n_recordings):
        factories.add_recording(session, image, user)
    session.commit()
    return project, image, user


def test_schema_check_refuses_unmigrated_database(settings: Settings) -> None:
    engine = get_engine()
    with pytest.raises(SchemaOutOfDate, match="voicecap db upgrade"):
        check_schema(engine)


def test_upgrade_reaches_head_and_is_idempotent(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    upgrade(engine)
    check_schema(engine)


def _word(start: float, end: float, word: str) -> dict[str, object]:
    return {"start": start, "end": end, "word": word, "probability": 0.9}


# Segments as revision 0001 stored them, words inside; the boundary at 6.42 is shared, as Whisper does.
OLD_SEGMENTS = [
    {
        "start": 0.0,
        "end": 6.42,
        "text": " Three red boats. Two trees",
        "avg_logprob": -0.2,
        "no_speech_prob": 0.01,
        "compression_ratio": 1.1,
        "words": [
            _word(0.0, 0.5, " Three"),
            _word(0.5, 1.0, " red"),
            _word(1.0, 6.0, " boats."),
            _word(6.0, 6.42, " Two"),
            _word(6.42, 6.42, " trees"),  # zero-length, on the boundary: stays in this segment
        ],
    },
    {
        "start": 6.42,
        "end": 9.0,
        "text": " and a house.",
        "avg_logprob": -0.3,
        "no_speech_prob": 0.02,
        "compression_ratio": 1.0,
        "words": [_word(6.42, 7.0, " and"), _word(7.0, 7.5, " a"), _word(7.5, 9.0, " house.")],
    },
    {"start": 9.0, "end": 9.5, "text": " ", "avg_logprob": -1.0, "words": []},
]
transcripts_table = table(
    "transcripts", column("revision", Integer), column("segments", JSON), column("words", JSON)
)


def _transcript_values(recording_id: int, revision: int, segments: list[object]) -> dict[str, object]:
    now = utcnow()
    return {
        "recording_id": recording_id,
        "revision": revision,
        "text": "Three red boats. Two trees and a house.",
        "language": "en",
        "segments": segments,
        "engine": "faster-whisper",
        "model": "tiny.en",
        "engine_version": "1",
        "audio_seconds": 9.5,
        "processing_seconds": 0.5,
        "word_count": 8,
        "words_per_minute": 50.0,
        "flags": [],
        "created_at": now,
        "updated_at": now,
    }


def _downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_migration_0002_moves_words_out_of_segments_and_back(settings: Settings) -> None:
    """Built at 0001 with words inside segments: 0002 moves them to `transcripts.words` in batches of
    1000 (2,100 rows here, so three batches), leaves segments without them, and downgrade puts them back."""
    engine = get_engine()
    upgrade(engine, "0001")
    with pytest.raises(SchemaOutOfDate, match="revision 0001"):
        check_schema(engine)
    with Session(engine) as session:
        image, user = _seed_as_in_database(session)
        recording_id = _insert_recordings_as_in_database(session, image, user.id, [{}])[0]
    # The table as 0001 made it: the model's columns (for their types) less `words`.
    old = table("transcripts", *(column(c.name, c.type) for c in Transcript.__table__.c if c.name != "words"))
    rows = [_transcript_values(recording_id, revision, OLD_SEGMENTS) for revision in range(1, 2101)]
    no_words = [{"start": 0.0, "end": 2.0, "text": " bulk loaded", "avg_logprob": -0.2}]
    rows.append(_transcript_values(recording_id, 2101, no_words))
    with engine.begin() as conn:
        conn.execute(insert(old), rows)
    with Session(engine) as session:
        image_id = session.scalars(select(Image.id)).one()
        first = session.scalars(select(old.c.id).where(old.c.revision == 1)).one()
        session.add(Caption(**factories.caption_values(image_id, "Red boats.", transcript_id=first)))
        session.commit()

    upgrade(engine)

    check_schema(engine)
    flat = [w for s in OLD_SEGMENTS for w in s["words"]]
    stripped = [{k: v for k, v in s.items() if k != "words"} for s in OLD_SEGMENTS]
    with engine.connect() as conn:
        moved = conn.execute(
            select(
                transcripts_table.c.revision, transcripts_table.c.segments, transcripts_table.c.words
            ).order_by(transcripts_table.c.revision)
        ).all()
    assert len(moved) == 2101
    for revision, segments, words in moved[:-1]:
        assert segments == stripped, revision
        assert words == flat, revision
    assert moved[-1].segments == no_words and moved[-1].words == []
    # New rows that name no words (bulk loads) get the server default, an empty list.
    with engine.begin() as conn:
        conn.execute(insert(old), [_transcript_values(recording_id, 2102, no_words)])
        assert (
            conn.scalar(select(transcripts_table.c.words).where(transcripts_table.c.revision == 2102)) == []
        )
    with Session(engine) as session:
        transcript = session.scalars(select(Transcript).where(Transcript.revision == 1)).one()
        assert transcript.words == flat and "words" not in transcript.segments[0]

    _downgrade(engine, "0001")

    assert current_revision(engine) == "0001"
    with engine.connect() as conn:
        restored = conn.execute(select(old.c.revision, old.c.segments).order_by(old.c.revision)).all()
    assert len(restored) == 2102
    for revision, segments in restored[:-2]:
        assert segments == OLD_SEGMENTS, revision
    assert restored[-1].segments == [{**no_words[0], "words": []}]
    with Session(engine) as session:  # the caption on a transcript survived both (no table copy)
        assert session.scalars(select(Caption.transcript_id)).all() == [first]
    upgrade(engine)  # and up again: the round trip is repeatable
    check_schema(engine)


def test_unique_keys_make_duplicates_impossible(session: Session) -> None:
    project, image, _ = _seed(session, n_recordings=1)
    session.add(
        Image(**factories.image_values(project.id, sha256=image.sha256, width=1, height=1, format="PNG"))
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    rec = session.scalars(select(Recording)).one()
    session.add(
        Recording(
            **factories.recording_values(project.id, image.id, rec.user_id, client_uuid=rec.client_uuid)
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()


def test_datetimes_round_trip_as_utc(session: Session) -> None:
    _, _, user = _seed(session)
    session.expire_all()
    loaded = session.get(User, user.id)
    assert loaded is not None and loaded.created_at.tzinfo is not None


def test_claim_lease_complete_fail_and_requeue(session: Session) -> None:
    _seed(session, n_recordings=3)
    stage = STAGES["transcribe"]
    ids = claim(session, stage, "w1", limit=2, lease_seconds=60, max_crashes=2)
    session.commit()
    assert len(ids) == 2
    assert claim(session, stage, "w2", limit=5, lease_seconds=60, max_crashes=2) != ids
    session.commit()
    assert heartbeat(session, stage, "w1", ids, 60) == 2
    assert heartbeat(session, stage, "w2", ids, 60) == 0  # fenced: w2 holds none of them
    assert complete(session, stage, "w2", ids[0]) is False
    assert complete(session, stage, "w1", ids[0]) is True
    assert fail(session, stage, "w1", ids[1], "boom", max_attempts=2, backoff_seconds=0) == stage.ready
    session.commit()
    again = claim(session, stage, "w1", limit=5, lease_seconds=60, max_crashes=2)
    assert ids[1] in again
    status = fail(session, stage, "w1", ids[1], "boom again", max_attempts=2, backoff_seconds=0)
    session.commit()
    assert status == RecordingStatus.failed
    failed = session.get(Recording, ids[1])
    assert failed is not None and "boom again" in (failed.last_error or "")
    assert requeue_failed(session) == 1
    session.commit()
    assert counts_by_status(session)["uploaded"] >= 1


def test_concurrent_claims_never_share_a_row(engine: Engine) -> None:
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    with maker() as session:
        _seed(session, n_recordings=40)
    stage = STAGES["transcribe"]
    got: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        mine: list[int] = []
        while True:
            with maker() as s:
                ids = claim(s, stage, name, limit=3, lease_seconds=60, max_crashes=3)
                s.commit()
            if not ids:
                break
            mine.extend(ids)
        got[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for ids in got.values() for i in ids]
    assert len(all_ids) == 40 and len(set(all_ids)) == 40


def test_llm_clean_stage_claims_enough_rows_to_fill_its_concurrency(
    engine: Engine, settings: Settings
) -> None:
    from transcribe.stages.clean import CleanProcessor
    from transcribe.worker import Worker, WorkerConfig

    maker = sessionmaker(bind=engine, expire_on_commit=False)
    with maker() as session:
        _seed(session, n_recordings=40)
    llm_settings = settings.model_copy(update={"cleaner": "llm", "llm_concurrency": 10})
    stage = CleanProcessor.from_settings(llm_settings)
    assert stage.min_batch_size == 20
    # rules: the configured batch size stands
    assert CleanProcessor.from_settings(settings).min_batch_size == 0

    class Probe:  # a processor of the transcribe stage that asks for big batches, like the llm cleaner
        stage = STAGES["transcribe"]
        min_batch_size = 20
        claim_languages = None

    worker = Worker(maker, [Probe()], WorkerConfig(worker_id="w", batch_size=8))
    assert len(worker.claim(Probe())) == 20
