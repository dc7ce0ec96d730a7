"""Worker overhead: the transcription worker end to end vs calling the engine directly on the same audio.

    python bench/worker.py                                 # SQLite and PostgreSQL, 8 one-minute takes
    python bench/worker.py --databases sqlite --recordings 16 --batch-size 8 --repeat 3
    python bench/worker.py --databases postgresql --stores local,s3   # the S3 store against the local one

The recordings are one-minute takes (the four speech fixtures joined with pauses, the length annotators
speak), stored as the intake stores them: a 16 kHz WAV in the blob store, a Recording row in `uploaded`.

For each database, alternately `--repeat` times (fastest kept):
- direct: `engine.transcribe_batch` on audio already decoded in memory, in batches of --batch-size;
- worker: `Worker.run(drain=True)` over the same rows: claim, load, read and decode the WAV blob,
  transcribe_batch, guard, insert the Transcript and complete each row, heartbeat thread running.

Overhead = (worker wall time - direct engine time) / direct engine time. The worker run also times its
own engine calls, so "pipeline share" (everything in the worker run that is not the engine: database,
blob reads, decoding, storing) is measured within one run, free of run-to-run noise. The target is
under 10%. Process CPU time (all threads) is reported beside wall time: on a shared machine it is the
steadier of the two. A table goes to stdout, JSON to bench/out/worker.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import delete, update  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from bench.stores import blob_url, object_store  # noqa: E402
from db.blobstore import open_blobstore  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Recording, RecordingStatus, Transcript  # noqa: E402
from db.session import make_engine  # noqa: E402
from db.settings import Settings  # noqa: E402
from tests.support.worker_data import add_recording, make_fixture, speech_clips  # noqa: E402
from transcribe.engines import load_engine  # noqa: E402
from transcribe.engines.base import SAMPLE_RATE, available_cpus  # noqa: E402
from transcribe.stages.transcribe import TranscribeProcessor  # noqa: E402
from transcribe.worker import Worker, WorkerConfig  # noqa: E402

OUT = REPO / "bench" / "out"
PG_ADMIN_URL = os.environ.get("VOICECAP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Row:
    database: str
    store: str
    recordings: int
    audio_seconds: float
    batch_size: int
    direct_engine_seconds: float
    worker_wall_seconds: float
    worker_engine_seconds: float
    worker_decode_seconds: float
    overhead_vs_direct: float  # (worker wall - direct engine) / direct engine
    direct_cpu_seconds: float  # process CPU time (all threads): steadier than wall time on a busy machine
    worker_cpu_seconds: float
    cpu_overhead_vs_direct: float
    pipeline_share: float  # (worker wall - its own engine time) / its own engine time
    real_time_factor: float  # worker wall / audio seconds


def one_minute_takes(count: int) -> list[np.ndarray]:
    """Join the fixture clips with 0.8 s pauses into ~60 s takes, rotating the order for variety."""
    clips = [clip.audio for clip in speech_clips()]
    pause = np.zeros(int(0.8 * SAMPLE_RATE), dtype=np.float32)
    takes = []
    for i in range(count):
        parts: list[np.ndarray] = []
        j = i
        while sum(len(p) for p in parts) < 60 * SAMPLE_RATE:
            parts += [clips[j % len(clips)], pause]
            j += 1
        takes.append(np.concatenate(parts)[: 60 * SAMPLE_RATE])
    return takes


@contextmanager
def database(kind: str, directory: Path):
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'bench.db'}"
        return
    from tests.support.databases import postgres_database

    with postgres_database() as url:
        yield url


def reset(factory: sessionmaker) -> None:
    with factory.begin() as session:
        session.execute(delete(Transcript))
        session.execute(
            update(Recording).values(
                status=RecordingStatus.uploaded,
                attempts=0,
                claimed_by=None,
                lease_until=None,
                last_error=None,
            )
        )


def bench_database(
    kind: str, engine, takes: list[np.ndarray], batch_size: int, repeat: int, store: str, seaweed
) -> Row:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        db = make_engine(url)
        upgrade(db)
        factory = sessionmaker(bind=db, expire_on_commit=False)
        blobs = open_blobstore(blob_url(store, seaweed, Path(tmp)))
        with factory() as session:
            fixture = make_fixture(session, "bench")
            for take in takes:
                add_recording(session, blobs, fixture, take)
        direct_best = worker_best = direct_cpu = worker_cpu = float("inf")
        best_processor: TranscribeProcessor | None = None
        for _ in range(repeat):
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(takes), batch_size):
                engine.transcribe_batch(takes[i : i + batch_size], "en")
            direct_best = min(direct_best, time.perf_counter() - started)
            direct_cpu = min(direct_cpu, time.process_time() - cpu)

            reset(factory)
            processor = TranscribeProcessor(engine, blobs)
            config = WorkerConfig(
                worker_id="bench", batch_size=batch_size, lease_seconds=300, poll_seconds=0.1
            )
            worker = Worker(factory, [processor], config)
            started, cpu = time.perf_counter(), time.process_time()
            totals = worker.run(drain=True)["transcribe"]
            wall = time.perf_counter() - started
            worker_cpu = min(worker_cpu, time.process_time() - cpu)
            if totals.done != len(takes):
                raise RuntimeError(f"worker finished {totals.done} of {len(takes)} recordings")
            if wall < worker_best:
                worker_best, best_processor = wall, processor
        db.dispose()
    assert best_processor is not None
    timings = best_processor.timings
    audio_seconds = sum(len(t) for t in takes) / SAMPLE_RATE
    return Row(
        database=kind,
        store=store,
        recordings=len(takes),
        audio_seconds=round(audio_seconds, 1),
        batch_size=batch_size,
        direct_engine_seconds=round(direct_best, 3),
        worker_wall_seconds=round(worker_best, 3),
        worker_engine_seconds=round(timings.engine_seconds, 3),
        worker_decode_seconds=round(timings.decode_seconds, 3),
        overhead_vs_direct=round((worker_best - direct_best) / direct_best, 4),
        direct_cpu_seconds=round(direct_cpu, 3),
        worker_cpu_seconds=round(worker_cpu, 3),
        cpu_overhead_vs_direct=round((worker_cpu - direct_cpu) / direct_cpu, 4),
        pipeline_share=round((worker_best - timings.engine_seconds) / timings.engine_seconds, 4),
        real_time_factor=round(worker_best / audio_seconds, 4),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--recordings", type=int, default=8)
    parser.add_argument("--stores", default="local", help="local and/or s3 (a SeaweedFS bucket).")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="0 = every available core")
    args = parser.parse_args()

    settings = Settings(cpu_threads=args.threads, device=args.device, model=args.model)
    engine = load_engine(settings)
    takes = one_minute_takes(args.recordings)
    engine.transcribe(takes[0][: 10 * SAMPLE_RATE], "en")  # warm up: the first call pays one-off costs
    stores = args.stores.split(",")
    with object_store(stores) as seaweed:
        rows = [
            bench_database(kind.strip(), engine, takes, args.batch_size, args.repeat, store, seaweed)
            for kind in args.databases.split(",")
            if kind.strip()
            for store in stores
        ]

    print(
        f"{'database':<11}{'store':<7}{'recs':>5}{'audio s':>9}{'direct s':>10}{'worker s':>10}"
        f"{'overhead':>10}{'cpu ovh':>9}{'pipeline':>10}{'RTF':>8}"
    )
    for r in rows:
        print(
            f"{r.database:<11}{r.store:<7}{r.recordings:>5}{r.audio_seconds:>9.0f}{r.direct_engine_seconds:>10.2f}"
            f"{r.worker_wall_seconds:>10.2f}{r.overhead_vs_direct:>10.1%}{r.cpu_overhead_vs_direct:>9.1%}"
            f"{r.pipeline_share:>10.1%}"
            f"{r.real_time_factor:>8.3f}"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": available_cpus(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "engine": {
            "name": engine.name,
            "model": args.model,
            "device": getattr(engine, "device", args.device),
        },
        "compute_type": getattr(engine, "compute_type", ""),
        "threads": getattr(engine, "cpu_threads", args.threads),
        "rows": [asdict(r) for r in rows],
    }
    (OUT / "worker.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
