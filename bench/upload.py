"""Recording intake under load: simulated annotators upload 60 s Opus takes to one `voicecap serve`.

    python bench/upload.py                                  # SQLite and PostgreSQL, both arrival patterns
    python bench/upload.py --databases postgresql --annotators 50 --modes paced
    python bench/upload.py --databases postgresql --stores local,s3     # the S3 store against the local one

Every annotator logs in, asks for the next image, and uploads a distinct 60 s webm/opus take (espeak-ng
speech from the test fixtures, 48 kbit/s like a browser) with PUT /api/recordings/{uuid}; the latency of
each upload (request sent → JSON answer, i.e. streamed to disk, decoded, measured, transcoded to 16 kHz
WAV, row committed) is recorded. Two arrival patterns:

- paced: annotators finish their takes at random moments spread over --spread seconds (50 people who
  each speak for 60 s do not all press Submit in the same millisecond);
- burst: all annotators press Submit at the same instant (a barrier), the worst case.

The server is a real `voicecap serve` subprocess (one uvicorn process) on this machine. Targets: zero
errors, p95 upload latency under 500 ms (paced). A table goes to stdout, JSON to bench/out/upload.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import av  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

from bench.stores import blob_url, object_store  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Image, Project, User  # noqa: E402
from db.session import make_engine  # noqa: E402
from tests.support.factories import image_values, user_values  # noqa: E402
from transcribe.audio import decode_audio  # noqa: E402

OUT = REPO / "bench" / "out"
SPEECH = REPO / "tests" / "fixtures" / "speech"
PG_ADMIN_URL = os.environ.get("VOICECAP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "bench-password"


# --- a database and a server ---------------------------------------------------------------------------


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    name = f"voicecap_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(url: str, data_dir: Path, blobs: str) -> Iterator[tuple[str, int]]:
    """`voicecap serve` in a subprocess on this database; yields its base URL and process id."""
    port = free_port()
    env = {
        **os.environ,
        "VOICECAP_DATABASE_URL": url,
        "VOICECAP_DATA_DIR": str(data_dir),
        "VOICECAP_BLOB_URL": blobs,
        "VOICECAP_SECRET_KEY": "bench",
        "VOICECAP_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
    }
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "annotate.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {(data_dir / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def seed_users(engine, count: int, prefix: str = "a") -> list[str]:
    """Users inserted in bulk with one shared password hash (hashing 50 passwords is not the bench)."""
    from annotate.security import hash_password

    hashed = hash_password(PASSWORD)
    names = [f"{prefix}{n}" for n in range(count)]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                user_values(
                    name,
                    password_hash=hashed,
                    disabled=False,
                    pseudonym=uuid.uuid4().hex[:16],
                    created_at=now,
                    updated_at=now,
                )
                for name in names
            ],
        )
    return names


def seed_project(engine, images: int, **fields) -> int:
    """A project and `images` image rows (rows only: the bench never fetches image bytes)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        project_id = conn.execute(
            insert(Project).returning(Project.id),
            [
                dict(
                    name=f"bench-{uuid.uuid4().hex[:6]}",
                    instructions="Describe the image.",
                    questions=["What is it?"],
                    language="en",
                    created_at=now,
                    updated_at=now,
                    **fields,
                )
            ],
        ).scalar_one()
        batch = 10_000
        for start in range(0, images, batch):
            conn.execute(
                insert(Image),
                [
                    image_values(
                        project_id,
                        sha256=f"{n:064x}",
                        source=f"bench://{n}",
                        blob_key=f"bench/{n}.jpg",
                        thumb_key=f"bench/{n}.thumb.jpg",
                        width=1024,
                        height=768,
                        meta={},
                        done_count=0,
                        created_at=now,
                        updated_at=now,
                    )
                    for n in range(start, min(images, start + batch))
                ],
            )
    return int(project_id)


def login(base: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120)
    client.post("/api/auth/login", json={"name": name, "password": PASSWORD}).raise_for_status()
    client.headers["X-CSRF-Token"] = client.cookies["voicecap_csrf"]
    return client


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- takes -------------------------------------------------------------------------------------------


def make_takes(count: int, seconds: float) -> list[bytes]:
    """Distinct 60 s webm/opus takes: the speech fixtures joined, rotated differently for each."""
    clips = [decode_audio(SPEECH / name, 48000) for name in ("boats.wav", "kitchen.flac", "street.ogg")]
    pause = np.zeros(int(0.6 * 48000), dtype=np.float32)
    joined = np.concatenate([part for clip in clips for part in (clip, pause)])
    reps = int(np.ceil(seconds * 48000 / len(joined))) + 1
    long = np.tile(joined, reps)
    rng = random.Random(7)
    takes = []
    for _ in range(count):
        offset = rng.randrange(0, len(joined))
        samples = long[offset : offset + int(seconds * 48000)]
        takes.append(encode_opus(samples))
    return takes


def encode_opus(samples: np.ndarray, rate: int = 48000) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=rate, layout="mono")
        stream.bit_rate = 48000
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


# --- the run -----------------------------------------------------------------------------------------


def run(
    kind: str, mode: str, annotators: int, takes: list[bytes], spread: float, store: str, seaweed
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="voicecap-bench-") as tmp:
        workdir = Path(tmp)
        blobs = blob_url(store, seaweed, workdir)
        with database(kind, workdir) as url:
            engine = make_engine(url)
            upgrade(engine)
            seed_project(engine, annotators * 2, min_seconds=30, max_seconds=120, per_image=1)
            names = seed_users(engine, annotators)
            engine.dispose()
            with serve(url, workdir, blobs) as (base, pid):
                clients = [login(base, name) for name in names]
                tasks = [c.post("/api/tasks/next", json={}).json()["task"] for c in clients]
                latencies: list[float] = []
                errors: list[str] = []
                lock = threading.Lock()
                barrier = threading.Barrier(annotators)
                rng = random.Random(11)
                offsets = [rng.uniform(0, spread) for _ in range(annotators)]
                start = time.monotonic()

                def annotator(n: int) -> None:
                    if mode == "burst":
                        barrier.wait(timeout=120)
                    else:
                        time.sleep(max(0.0, start + offsets[n] - time.monotonic()))
                    began = time.perf_counter()
                    try:
                        response = clients[n].put(
                            f"/api/recordings/{uuid.uuid4()}",
                            params={"assignment_id": tasks[n]["assignment_id"]},
                            content=takes[n],
                            headers={"Content-Type": "audio/webm;codecs=opus"},
                        )
                        elapsed = time.perf_counter() - began
                        with lock:
                            if response.status_code == 201:
                                latencies.append(elapsed)
                            else:
                                errors.append(f"{response.status_code} {response.text[:200]}")
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(repr(exc))

                threads = [threading.Thread(target=annotator, args=(n,)) for n in range(annotators)]
                server = psutil.Process(pid)
                cpu_before = sum(server.cpu_times()[:2])
                wall = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall = time.perf_counter() - wall
                server_cpu = sum(server.cpu_times()[:2]) - cpu_before
                for client in clients:
                    client.close()
            if errors:
                log = (workdir / "serve.log").read_text(errors="replace")
                print(f"server log (last lines):\n{log[-4000:]}", file=sys.stderr)
    return {
        "database": kind,
        "store": store,
        "mode": mode,
        "annotators": annotators,
        "uploads_ok": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "take_kb_mean": round(sum(len(t) for t in takes) / len(takes) / 1024, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "wall_s": round(wall, 1),
        # Machine-independent: the server's CPU time per upload (all threads).
        "server_cpu_ms_per_upload": round(server_cpu / max(1, len(latencies)) * 1000, 1),
        "load_average_after": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--modes", default="paced,burst")
    parser.add_argument("--stores", default="local", help="local and/or s3 (a SeaweedFS bucket).")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of each take.")
    parser.add_argument("--spread", type=float, default=60.0, help="Paced: takes finish within this window.")
    args = parser.parse_args()

    print(f"encoding {args.annotators} distinct {args.seconds:g} s opus takes…", flush=True)
    takes = make_takes(args.annotators, args.seconds)
    results = []
    stores = args.stores.split(",")
    with object_store(stores) as seaweed:
        for kind in args.databases.split(","):
            for mode in args.modes.split(","):
                for store in stores:
                    result = run(kind, mode, args.annotators, takes, args.spread, store, seaweed)
                    results.append(result)
                    print(json.dumps(result), flush=True)

    print()
    print(
        "| database | store | arrivals | uploads | errors | p50 ms | p95 ms | max ms | server CPU ms/upload "
        "| load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['database']} | {r['store']} | {r['mode']} | {r['uploads_ok']} | {r['errors']} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | {r['server_cpu_ms_per_upload']} | "
            f"{r['load_average_after']} |"
        )
    write_results("upload.json", args, results)


def write_results(name: str, args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    """bench/out/NAME: the results with when, where and how they were measured."""
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "args": vars(args),
    }
    (OUT / name).write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
