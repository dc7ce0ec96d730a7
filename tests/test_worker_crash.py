"""Real `voicecap worker` processes: one killed with SIGKILL mid-batch, one stopped with SIGTERM.

Crash safety: three workers share PostgreSQL over 30 recordings; one is killed while it holds a batch.
Its rows come back when the lease (4 s here) runs out, and every recording ends `transcribed` with
exactly one transcript, completed by exactly one worker (each worker logs every row it completes).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.blobstore import BlobStore
from db.models import Recording, RecordingStatus, Transcript
from tests.support.worker_data import add_speech_takes, make_fixture

pytestmark = pytest.mark.slow

DONE_LINE = re.compile(r"transcribe: recording (\d+) done")
WORKER_ENV = {
    "VOICECAP_LEASE_SECONDS": "4",
    "VOICECAP_WORKER_POLL_SECONDS": "0.2",
    "VOICECAP_RETRY_BACKOFF_SECONDS": "0",
    "VOICECAP_CPU_THREADS": "1",
    "VOICECAP_DEVICE": "cpu",
}


def start_worker(worker_id: str, logs: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = logs / f"{worker_id}.log"
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "annotate.cli.main",
            "worker",
            "--stages",
            "transcribe",
            "--id",
            worker_id,
            *extra,
        ],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **WORKER_ENV},
    )
    handle.close()
    return process, log


def held_by(session: Session, worker_id: str) -> list[int]:
    session.expire_all()
    query = select(Recording.id).where(
        Recording.claimed_by == worker_id, Recording.status == RecordingStatus.transcribing
    )
    ids = list(session.scalars(query))
    session.rollback()  # end the read transaction (SQLite's BEGIN IMMEDIATE holds the write lock)
    return ids


def wait_for(condition, timeout: float, processes: list[subprocess.Popen[bytes]]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if any(p.poll() is not None for p in processes):
            pytest.fail(f"a worker exited early: {[p.returncode for p in processes]}")
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s")


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_kill_9_mid_batch_loses_nothing_and_does_nothing_twice(
    session: Session, blobs: BlobStore, tmp_path: Path
) -> None:
    fixture = make_fixture(session)
    # 30 six-second takes keep the test short; the workers only need real speech to chew on.
    ids = add_speech_takes(session, blobs, fixture, 30)
    session.rollback()

    # All three start together, so the work is still there when the victim is killed.
    victim, victim_log = start_worker("victim", tmp_path, "--batch-size", "3")
    survivors = [start_worker(f"survivor-{n}", tmp_path, "--batch-size", "3", "--drain") for n in (1, 2)]
    processes = [victim] + [process for process, _ in survivors]
    abandoned: list[int] = []
    try:
        while not abandoned:
            wait_for(lambda: held_by(session, "victim"), 120, processes)
            # Freeze it, then look: the rows it holds now are rows it will never finish.
            victim.send_signal(signal.SIGSTOP)
            abandoned = held_by(session, "victim")
            if not abandoned:  # it completed its batch in between; catch the next one
                victim.send_signal(signal.SIGCONT)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        for process, _ in survivors:
            assert process.wait(240) == 0
    finally:
        stop_all(processes)
    logs = [victim_log] + [log for _, log in survivors]
    for log in logs:  # shown by pytest only when the test fails
        print(f"--- {log.name}\n{log.read_text()[-3000:]}")

    session.expire_all()
    rows = {r.id: r for r in session.scalars(select(Recording))}
    assert {rid: rows[rid].status for rid in ids} == dict.fromkeys(ids, RecordingStatus.transcribed)
    per_recording = Counter(session.scalars(select(Transcript.recording_id)))
    assert per_recording == Counter(ids)  # exactly one transcript each
    assert all(rows[rid].claimed_by is None and rows[rid].lease_until is None for rid in ids)
    # The victim's batch was taken over after its lease ran out: a second attempt each.
    assert all(rows[rid].attempts == 2 for rid in abandoned)

    completions = Counter(int(m) for log in logs for m in DONE_LINE.findall(log.read_text()))
    assert completions == Counter(ids), "every recording must be completed by exactly one worker"
    survivor_text = "".join(log.read_text() for _, log in survivors)
    assert "lease lost" not in survivor_text


def test_sigterm_finishes_the_current_batch_then_exits(
    session: Session, blobs: BlobStore, tmp_path: Path
) -> None:
    fixture = make_fixture(session)
    ids = add_speech_takes(session, blobs, fixture, 6)
    session.rollback()

    worker, log = start_worker("graceful", tmp_path, "--batch-size", "2")
    try:
        batch = wait_for(lambda: held_by(session, "graceful"), 120, [worker])
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(120) == 0, log.read_text()
    finally:
        stop_all([worker])

    session.expire_all()
    statuses = {r.id: r.status for r in session.scalars(select(Recording))}
    assert {rid: statuses[rid] for rid in batch} == dict.fromkeys(batch, RecordingStatus.transcribed)
    assert sorted(statuses.values()).count(RecordingStatus.uploaded) == len(ids) - len(batch)
    assert session.scalar(select(func.count(Transcript.id))) == len(batch)
    assert "SIGTERM: finishing the current batch" in log.read_text()
