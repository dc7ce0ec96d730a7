"""Many machines, nothing shared but PostgreSQL and the object store.

Two `voicecap serve` and three `voicecap worker` processes run as separate "machines": each has its own
empty working directory, home and data directory, and an environment of its own; they share only a
PostgreSQL database and a SeaweedFS bucket. Takes are uploaded over real HTTP through both APIs; one
API process is SIGKILLed in the middle of an upload (the client retries it on the other API with the
same client UUID) and one worker is SIGKILLed holding claimed work. Every take must end captioned
exactly once, and every blob a row names must be in the bucket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from db.blobstore import open_blobstore
from db.migrate import upgrade
from db.models import Caption, Recording, RecordingStatus, Transcript
from tests.support.databases import postgres_available, postgres_database, require
from tests.support.seaweed import Seaweed
from tests.support.server import free_port
from tests.test_assignments import add_images, make_project
from tests.test_intake import encode, speech

REPO = Path(__file__).resolve().parent.parent
TAKES_PER_API = 3
pytestmark = pytest.mark.slow


@dataclass
class Machine:
    name: str
    process: subprocess.Popen[bytes]
    home: Path

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return (self.home / "log.txt").read_text(errors="replace")[-4000:]


class Cluster:
    def __init__(self, root: Path, database_url: str, blob_url: str, seaweed: Seaweed) -> None:
        self.root = root
        self.shared = {
            "VOICECAP_DATABASE_URL": database_url,
            "VOICECAP_BLOB_URL": blob_url,
            "VOICECAP_SECRET_KEY": "many-machines-secret",
            **seaweed.env(),
        }
        self.machines: list[Machine] = []

    def start(self, name: str, *args: str, **settings: str) -> Machine:
        home = self.root / name
        home.mkdir()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "PYTHONPATH": str(REPO),
            "HF_HUB_OFFLINE": "1",
            "VOICECAP_DATA_DIR": str(home / "data"),
            **self.shared,
            **{f"VOICECAP_{key.upper()}": value for key, value in settings.items()},
        }
        log = (home / "log.txt").open("wb")
        command = [sys.executable, "-m", "annotate.cli.main", *args]
        process = subprocess.Popen(command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
        machine = Machine(name, process, home)
        self.machines.append(machine)
        return machine

    def api(self, name: str) -> tuple[Machine, str]:
        port = free_port()
        machine = self.start(name, "serve", "--port", str(port), login_attempts_per_minute="1000")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if machine.process.poll() is not None:
                raise AssertionError(f"{name} exited:\n{machine.log()}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    return machine, url
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError(f"{name} did not start:\n{machine.log()}")

    def worker(self, name: str) -> Machine:
        return self.start(
            name, "worker", "--stages", "transcribe,clean", "--device", "cpu", "--id", name,
            batch_size="2", lease_seconds="6", worker_poll_seconds="0.3", retry_backoff_seconds="0.5",
            cpu_threads="1",
        )  # fmt: skip

    def stop(self) -> None:
        for machine in self.machines:
            if machine.process.poll() is None:
                machine.process.kill()
                machine.process.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path: Path, seaweed: Seaweed, s3_blob_url: str) -> Iterator[tuple[Cluster, Engine]]:
    require(postgres_available(), "PostgreSQL is not reachable at 127.0.0.1:5432")
    with postgres_database() as url:
        engine = create_engine(url)
        upgrade(engine)
        cluster = Cluster(tmp_path / "machines", url, s3_blob_url, seaweed)
        cluster.root.mkdir()
        try:
            yield cluster, engine
        finally:
            cluster.stop()
            engine.dispose()


def login(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    client.post("/api/auth/login", json={"name": name, "password": "correct-horse"}).raise_for_status()
    client.headers["X-CSRF-Token"] = client.cookies["voicecap_csrf"]
    return client


def upload(client: httpx.Client, assignment_id: int, client_uuid: str, take: bytes) -> httpx.Response:
    return client.put(
        f"/api/recordings/{client_uuid}",
        params={"assignment_id": assignment_id, "client_seconds": 3.0},
        content=take,
        headers={"Content-Type": "audio/webm;codecs=opus"},
    )


def seed(engine: Engine, blob_url: str) -> None:
    from tests.support import factories

    with Session(engine, expire_on_commit=False) as session:
        project = make_project(session, name="fleet", min_seconds=1, max_seconds=20, per_image=1)
        add_images(session, open_blobstore(blob_url), project, 2 * TAKES_PER_API + 1)
        for name in ("ann1", "ann2"):
            factories.add_user(session, name, "annotator", "correct-horse")
        session.commit()


def kill_mid_upload(machine: Machine, client: httpx.Client, assignment_id: int, take: bytes) -> str:
    """Stream half a take to `machine`, SIGKILL it while it waits for the rest; returns the UUID."""
    client_uuid = str(uuid.uuid4())
    half_sent, killed = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        yield take[: len(take) // 2]
        half_sent.set()
        killed.wait(30)
        yield take[len(take) // 2 :]

    def send() -> None:
        # The machine dies under us: a transport error, what a browser sees before it retries.
        with contextlib.suppress(httpx.TransportError):
            client.put(
                f"/api/recordings/{client_uuid}",
                params={"assignment_id": assignment_id, "client_seconds": 3.0},
                content=body(),
                headers={"Content-Type": "audio/webm;codecs=opus"},
            )

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    assert half_sent.wait(30)
    time.sleep(0.5)
    machine.kill()
    killed.set()
    sender.join(timeout=35)
    return client_uuid


def test_two_apis_three_workers_share_only_postgres_and_the_bucket(
    cluster: tuple[Cluster, Engine], s3_blob_url: str
) -> None:
    fleet, engine = cluster
    seed(engine, s3_blob_url)
    take = encode(speech(3.0), "webm")
    api_a, url_a = fleet.api("api-a")
    api_b, url_b = fleet.api("api-b")
    workers = [fleet.worker(f"worker-{n}") for n in (1, 2, 3)]
    ann1, ann2 = login(url_a, "ann1"), login(url_b, "ann2")

    uploaded: set[str] = set()
    for _ in range(TAKES_PER_API):
        for client in (ann1, ann2):
            task = client.post("/api/tasks/next", json={}).json()["task"]
            client_uuid = str(uuid.uuid4())
            assert upload(client, task["assignment_id"], client_uuid, take).status_code == 201
            uploaded.add(client_uuid)

    # A worker is killed while it holds claimed work.
    victim = _wait_for_claim(engine, workers)
    victim.kill()

    # API b dies mid-upload; ann2's browser retries the same take on API a, logged in there.
    task = ann2.post("/api/tasks/next", json={}).json()["task"]
    retried = kill_mid_upload(api_b, ann2, task["assignment_id"], take)
    ann2_on_a = login(url_a, "ann2")
    assert upload(ann2_on_a, task["assignment_id"], retried, take).status_code == 201
    again = upload(ann2_on_a, task["assignment_id"], retried, take)
    assert again.status_code == 200 and not again.json()["created"]
    uploaded.add(retried)

    _wait_until_captioned(engine, len(uploaded), fleet)
    with Session(engine) as session:
        takes = session.scalars(select(Recording)).all()
        assert {t.client_uuid for t in takes} == uploaded
        assert {t.status for t in takes} == {RecordingStatus.captioned}
        per_take = dict(
            session.execute(select(Caption.recording_id, func.count()).group_by(Caption.recording_id)).all()
        )
        assert per_take == {t.id: 1 for t in takes}, "every take captioned exactly once"
        transcripts = session.scalar(select(func.count()).select_from(Transcript))
        assert transcripts == len(takes)
        from annotate.services.blobs import referenced_keys

        referenced = referenced_keys(session)
    stored = set(open_blobstore(s3_blob_url).keys())
    assert referenced <= stored, f"missing from the bucket: {sorted(referenced - stored)[:5]}"
    # No machine wrote a blob to its own disk.
    for machine in fleet.machines:
        assert not (machine.home / "data" / "blobs").exists(), machine.name
    assert api_a.process.poll() is None


def _wait_for_claim(engine: Engine, workers: list[Machine]) -> Machine:
    deadline = time.monotonic() + 90
    by_name = {w.name: w for w in workers}
    while time.monotonic() < deadline:
        with Session(engine) as session:
            holders = session.scalars(
                select(Recording.claimed_by).where(
                    Recording.status.in_([RecordingStatus.transcribing, RecordingStatus.cleaning])
                )
            ).all()
        for holder in holders:
            if holder in by_name:
                return by_name[holder]
        time.sleep(0.1)
    raise AssertionError("no worker claimed work:\n" + "\n".join(w.log() for w in workers))


def _wait_until_captioned(engine: Engine, count: int, fleet: Cluster) -> None:
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        with Session(engine) as session:
            statuses = session.scalars(select(Recording.status)).all()
        if len(statuses) == count and all(s == RecordingStatus.captioned for s in statuses):
            return
        if any(s == RecordingStatus.failed for s in statuses):
            break
        time.sleep(0.5)
    logs = "\n".join(f"--- {m.name}\n{m.log()}" for m in fleet.machines)
    raise AssertionError(f"takes not all captioned: {statuses}\n{logs}")
