from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import SchemaOutOfDate, check_schema, current_revision, head_revision
from db.models import Image, Project, Recording, RecordingStatus, Role, User, utcnow
from db.queue import STAGES, claim, complete, counts_by_status, fail, heartbeat, requeue_failed
from db.session import get_engine
from db.settings import Settings


def _recording(client_uuid: str, image: Image, user_id: int) -> Recording:
    return Recording(
        client_uuid=client_uuid,
        project_id=image.project_id,
        image_id=image.id,
        user_id=user_id,
        original_key="o",
        content_type="audio/wav",
        wav_key="w",
        size_bytes=1,
        duration_seconds=1,
        loudness_dbfs=-20,
        silence_fraction=0.1,
    )


def _seed(session: Session, n_recordings: int = 0) -> tuple[Project, Image, User]:
    project = Project(name="p", questions=["What is it?"])
    user = User(name="ann", role=Role.annotator, password_hash="x", pseudonym="ps1")
    session.add_all([project, user])
    session.flush()
    image = Image(
        project_id=project.id,
        sha256="a" * 64,
        source="a.jpg",
        blob_key="k",
        thumb_key="t",
        width=10,
        height=10,
        format="JPEG",
    )
    session.add(image)
    session.flush()
    for i in range(n_recordings):
        session.add(_recording(f"00000000-0000-0000-0000-{i:012d}", image, user.id))
    session.commit()
    return project, image, user


def test_schema_check_refuses_unmigrated_database(settings: Settings) -> None:
    engine = get_engine()
    with pytest.raises(SchemaOutOfDate, match="voicecap db upgrade"):
        check_schema(engine)


def test_upgrade_reaches_head_and_is_idempotent(engine: Engine) -> None:
    from db.migrate import upgrade

    assert current_revision(engine) == head_revision()
    upgrade(engine)
    check_schema(engine)


def test_unique_keys_make_duplicates_impossible(session: Session) -> None:
    project, image, _ = _seed(session, n_recordings=1)
    session.add(
        Image(
            project_id=project.id,
            sha256=image.sha256,
            source="b.jpg",
            blob_key="k",
            thumb_key="t",
            width=1,
            height=1,
            format="PNG",
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    rec = session.scalars(select(Recording)).one()
    session.add(_recording(rec.client_uuid, image, rec.user_id))
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
    ids = claim(session, stage, "w1", limit=2, lease_seconds=60, max_attempts=2)
    session.commit()
    assert len(ids) == 2
    assert claim(session, stage, "w2", limit=5, lease_seconds=60, max_attempts=2) != ids
    session.commit()
    assert heartbeat(session, stage, "w1", ids, 60) == 2
    assert heartbeat(session, stage, "w2", ids, 60) == 0  # fenced: w2 holds none of them
    assert complete(session, stage, "w2", ids[0]) is False
    assert complete(session, stage, "w1", ids[0]) is True
    assert fail(session, stage, "w1", ids[1], "boom", max_attempts=2, backoff_seconds=0) == stage.ready
    session.commit()
    again = claim(session, stage, "w1", limit=5, lease_seconds=60, max_attempts=2)
    assert ids[1] in again
    status = fail(session, stage, "w1", ids[1], "boom again", max_attempts=2, backoff_seconds=0)
    session.commit()
    assert status == RecordingStatus.failed
    failed = session.get(Recording, ids[1])
    assert failed is not None and "boom again" in (failed.last_error or "")
    assert requeue_failed(session) == 1
    session.commit()
    assert counts_by_status(session)["uploaded"] >= 1


def test_expired_lease_returns_work_then_fails_after_max_attempts(session: Session) -> None:
    _seed(session, n_recordings=1)
    stage = STAGES["transcribe"]
    for attempt in range(2):
        [rid] = claim(session, stage, f"dead{attempt}", limit=1, lease_seconds=60, max_attempts=2)
        session.get(Recording, rid).lease_until = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
        session.commit()
    assert claim(session, stage, "w", limit=1, lease_seconds=60, max_attempts=2) == []
    session.commit()
    rec = session.get(Recording, rid)
    assert (
        rec is not None and rec.status == RecordingStatus.failed and "lease expired" in (rec.last_error or "")
    )


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
                ids = claim(s, stage, name, limit=3, lease_seconds=60, max_attempts=3)
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
    from transcribe.clean_stage import build_clean_stage
    from transcribe.worker import Worker, WorkerConfig

    maker = sessionmaker(bind=engine, expire_on_commit=False)
    with maker() as session:
        _seed(session, n_recordings=40)
    llm_settings = settings.model_copy(update={"cleaner": "llm", "llm_concurrency": 10})
    stage = build_clean_stage(llm_settings)
    assert stage.min_batch_size == 20
    assert build_clean_stage(settings).min_batch_size == 0  # rules: the configured batch size stands

    class Probe:  # a processor of the transcribe stage that asks for big batches, like the llm cleaner
        stage = "transcribe"
        min_batch_size = 20

    worker = Worker(maker, [Probe()], WorkerConfig(worker_id="w", batch_size=8))  # type: ignore[list-item]
    assert len(worker.claim(Probe())) == 20  # type: ignore[arg-type]
