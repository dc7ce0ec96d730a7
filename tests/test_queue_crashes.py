"""Crashes are counted apart from errors (db/queue.py): a row whose worker died is claimed on its own
from then on, and only crashes while alone, up to max_crashes, fail it. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Recording, RecordingStatus, utcnow
from db.queue import STAGES, claim, complete, fail, requeue_failed
from tests.test_db import _seed

STAGE = STAGES["transcribe"]


def _claim(session: Session, worker: str, limit: int = 8, max_crashes: int = 3) -> list[int]:
    ids = claim(session, STAGE, worker, limit=limit, lease_seconds=60, max_crashes=max_crashes)
    session.commit()
    return ids


def _die(session: Session, worker: str) -> None:
    """The worker vanished: its leases have run out."""
    session.execute(
        update(Recording)
        .where(Recording.claimed_by == worker)
        .values(lease_until=utcnow() - timedelta(seconds=1))
    )
    session.commit()


def _counters(session: Session, rid: int) -> tuple[str, int, int, int, int, bool]:
    session.expire_all()
    r = session.get(Recording, rid)
    assert r is not None
    return (r.status.value, r.attempts, r.errors, r.crashes, r.crashes_alone, r.isolated)


def test_a_dead_batch_costs_no_attempt_and_its_rows_are_then_claimed_one_at_a_time(
    session: Session,
) -> None:
    _seed(session, n_recordings=5)
    batch = _claim(session, "dead", limit=3)
    assert len(batch) == 3
    _die(session, "dead")

    # The rows nobody has tried yet come first (oldest next_attempt_at) and batch together; the
    # batch stops before the isolated rows.
    fresh = _claim(session, "w1")
    assert len(fresh) == 2 and not set(fresh) & set(batch)
    for rid in batch:
        assert _counters(session, rid) == ("uploaded", 1, 0, 1, 0, True)
    # Then each isolated row alone, in order, although more were asked for.
    assert [_claim(session, f"solo{n}") for n in range(3)] == [[rid] for rid in batch]
    assert _claim(session, "w2") == []


def test_only_crashes_while_alone_count_and_max_crashes_of_them_fail_the_row(session: Session) -> None:
    _seed(session, n_recordings=3)
    killer, *mates = _claim(session, "w0")
    _die(session, "w0")  # in a batch: isolates all three, counts against none
    for n in (1, 2, 3):
        assert _claim(session, f"w{n}") == [killer]  # alone, though 8 were asked for
        # The claim found its last worker dead: a crash, counted against it only if it was alone.
        assert _counters(session, killer) == ("transcribing", n + 1, 0, n, n - 1, True)
        if n == 1:  # its batch-mates, alone too, are fine
            for rid in mates:
                assert _claim(session, f"mate-{rid}") == [rid]
                assert complete(session, STAGE, f"mate-{rid}", rid)
                session.commit()
        _die(session, f"w{n}")
    assert _claim(session, "w4") == []  # the claim that finds it expired fails it

    assert _counters(session, killer) == ("failed", 4, 0, 4, 3, True)
    error = session.scalar(select(Recording.last_error).where(Recording.id == killer))
    assert error is not None and error.startswith("transcribe: its worker died 3 times while processing")
    assert [_counters(session, rid)[0] for rid in mates] == ["transcribed", "transcribed"]
    assert all(_counters(session, rid)[2:5] == (0, 1, 0) for rid in mates)


def test_errors_keep_their_own_max_attempts(session: Session) -> None:
    _seed(session, n_recordings=1)
    [rid] = session.scalars(select(Recording.id)).all()
    for n in (1, 2):  # two crashes (the first isolates) spend no attempt
        assert _claim(session, f"dead{n}") == [rid]
        _die(session, f"dead{n}")
    assert _claim(session, "w") == [rid]
    assert fail(session, STAGE, "w", rid, "boom", max_attempts=2, backoff_seconds=0) == STAGE.ready
    session.commit()
    assert _counters(session, rid) == ("uploaded", 3, 1, 2, 1, True)
    assert _claim(session, "w") == [rid]
    assert fail(session, STAGE, "w", rid, "boom", max_attempts=2, backoff_seconds=0) == RecordingStatus.failed
    session.commit()
    assert _counters(session, rid) == ("failed", 4, 2, 2, 1, True)
    error = session.scalar(select(Recording.last_error).where(Recording.id == rid))
    assert error == "transcribe attempt 4: boom"


def test_completion_ends_isolation_and_a_requeue_gives_a_fresh_budget(session: Session) -> None:
    _seed(session, n_recordings=2)
    done, failed = _claim(session, "w0")
    _die(session, "w0")
    assert _claim(session, "w1") == [done]
    assert complete(session, STAGE, "w1", done)
    session.commit()
    # Transcribed: the clean stage batches it again.
    assert _counters(session, done) == ("transcribed", 2, 0, 1, 0, False)

    for n in range(1, 3):  # fails at max_crashes=2 (crashes alone)
        assert _claim(session, f"k{n}", max_crashes=2) == [failed]
        _die(session, f"k{n}")
    assert _claim(session, "k", max_crashes=2) == []
    assert _counters(session, failed) == ("failed", 3, 0, 3, 2, True)
    assert requeue_failed(session, STAGE) == 1
    session.commit()
    # Tried again, alone still (it killed workers), with its budget back and its history kept.
    assert _counters(session, failed) == ("uploaded", 0, 0, 3, 0, True)


def test_concurrent_claimers_never_share_a_row_and_claim_isolated_rows_alone(engine: Engine) -> None:
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    with maker() as session:
        _seed(session, n_recordings=40)
        session.execute(update(Recording).where(Recording.id % 3 == 0).values(isolated=True))
        session.commit()
        isolated = set(session.scalars(select(Recording.id).where(Recording.isolated)))
    claims: list[list[int]] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            with maker() as s:
                ids = claim(s, STAGE, name, limit=4, lease_seconds=60, max_crashes=3)
                s.commit()
            if not ids:
                return
            with lock:
                claims.append(ids)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [rid for ids in claims for rid in ids]
    assert sorted(claimed) == list(range(min(claimed), min(claimed) + 40))
    for ids in claims:
        assert len(ids) == 1 or not set(ids) & isolated, ids
    assert sum(1 for ids in claims if len(ids) > 1) > 0
    with maker() as s:
        statuses = set(s.scalars(select(Recording.status)))
    assert statuses == {RecordingStatus.transcribing}
