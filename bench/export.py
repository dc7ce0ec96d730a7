"""Export benchmark: N captioned images into a fresh SQLite or PostgreSQL database, then `voicecap export`.

    python bench/export.py --db sqlite --images 1000000
    python bench/export.py --db postgresql --images 1000000 --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Rows are inserted in bulk (executemany on SQLite, COPY on PostgreSQL): each image has one recording by one
of 50 annotators, a transcript of about 90 words in 3 segments with every word's timing (as the worker
stores them), an approved caption of about 70 words, and every tenth an approval review. `--points`
gives every take a point set (three labels with 1-4 points each, one label answered "none"), and
`--trace-every N` every Nth take a trace of its whole audio at 20 Hz (60-90 s: 1,200-1,800 samples), whose
word timings the export then reads too. The export runs
as the real CLI in a child process; its wall time, CPU time and the peak resident memory of it and of
each worker process it starts (VmHWM from /proc, and their sum) are reported, with the rows and bytes
written. `--keep` keeps the database (its URL is in the report) and `--reuse URL` exports from it again
without seeding. `--stores local,s3` exports the same database once per blob store (s3: a bucket on a
SeaweedFS server started for the run), rows then locate blobs as s3:// URLs. Results go in
docs/benchmarks.md under "## Export".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from annotate.services.export.pointing import point_set_export  # noqa: E402
from bench.stores import blob_url, object_store  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Project, User  # noqa: E402
from db.session import make_engine  # noqa: E402

WORDS = [
    "a",
    "red",
    "fishing",
    "boat",
    "rests",
    "against",
    "the",
    "stone",
    "quay",
    "while",
    "two",
    "gulls",
    "stand",
    "on",
    "a",
    "wooden",
    "post",
    "and",
    "the",
    "water",
    "below",
    "is",
    "green",
    "and",
    "calm",
    "with",
    "ropes",
    "coiled",
    "on",
    "the",
    "deck",
    "a",
    "yellow",
    "crane",
    "lifts",
    "containers",
    "in",
    "the",
    "background",
    "under",
    "a",
    "pale",
    "sky",
    "with",
    "thin",
    "clouds",
    "and",
    "small",
    "waves",
    "catch",
    "the",
    "light",
    "near",
    "the",
    "hull",
]
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
STAMP = WHEN.isoformat()
CHUNK = 50_000


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


LABELS = ("deck chair", "boat", "person", "gull", "crane")
TRACE_HZ = 20  # narrate mode samples the pointer at 20 Hz or more


def pointed(rng: random.Random) -> str:
    """A point-mode take's points (JSON): three labels pointed at, 1-4 points each."""
    return json.dumps(
        [
            {
                "x": round(rng.random(), 4),
                "y": round(rng.random(), 4),
                "t": round(rng.uniform(0, 60), 2),
                "label": label,
            }
            for label in rng.sample(LABELS, 3)
            for _ in range(rng.randint(1, 4))
        ]
    )


def trace_row(ident: int, seconds: float, rng: random.Random) -> dict[str, Any]:
    """The pointer over the whole take at TRACE_HZ, in strokes of about 10 s (it left the image between)."""
    strokes, x, y = [], rng.random(), rng.random()
    samples = int(seconds * TRACE_HZ)
    for first in range(0, samples, 10 * TRACE_HZ):
        stroke = []
        for n in range(first, min(samples, first + 10 * TRACE_HZ)):
            x = min(1.0, max(0.0, x + rng.uniform(-0.01, 0.01)))
            y = min(1.0, max(0.0, y + rng.uniform(-0.01, 0.01)))
            stroke.append([round(x, 4), round(y, 4), round(n / TRACE_HZ, 2)])
        strokes.append(stroke)
    return {
        "id": ident,
        "recording_id": ident,
        "segments": json.dumps(strokes),
        "sample_count": samples,
        "created_at": STAMP,
        "updated_at": STAMP,
    }


def rows(
    n: int, project_id: int, users: list[int], lead: int, points: bool = False, trace_every: int = 0
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Batches of rows for the four tables (and reviews), ids 1..n shared by an image and its children;
    with `points` every take has a point set, and every `trace_every`-th (0: none) a trace as well."""
    rng = random.Random(7)
    # Pointing rows come from pools made once (generating 1,500 samples per trace in Python would make
    # seeding slower than the export), on their own random stream: rows without pointing stay as they were.
    pointing = random.Random(11)
    point_pool = [pointed(pointing) for _ in range(997)] if points else []
    absent_pool = [json.dumps([label]) for label in LABELS]  # one label answered "none in this image"
    trace_pool = [trace_row(0, 60.0 + n, pointing) for n in range(30)] if trace_every else []
    for start in range(1, n + 1, CHUNK):
        batch: dict[str, list[dict[str, Any]]] = {
            "images": [],
            "recordings": [],
            "transcripts": [],
            "captions": [],
            "point_sets": [],
            "traces": [],
        }
        batch["reviews"] = []
        for ident in range(start, min(n, start + CHUNK - 1) + 1):
            sha = uuid.UUID(int=rng.getrandbits(128)).hex + uuid.UUID(int=rng.getrandbits(128)).hex
            spoken = [sentence(rng, 30) for _ in range(3)]
            batch["images"].append(
                {
                    "id": ident,
                    "project_id": project_id,
                    "sha256": sha,
                    "source": f"https://images.example/{sha[:16]}.jpg",
                    "blob_key": f"{sha[:2]}/{sha[2:4]}/{sha}.jpg",
                    "thumb_key": f"{sha[:2]}/{sha[2:4]}/{sha}.thumb.jpg",
                    "width": 1024,
                    "height": 768,
                    "format": "JPEG",
                    "metadata": "{}",
                    "done_count": 1,
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
            )
            batch["recordings"].append(
                {
                    "id": ident,
                    "client_uuid": str(uuid.UUID(int=rng.getrandbits(128))),
                    "project_id": project_id,
                    "image_id": ident,
                    "user_id": users[ident % len(users)],
                    "source": "browser",
                    "original_key": f"au/{ident % 97:02d}/{ident}.webm",
                    "content_type": "audio/webm",
                    "wav_key": f"au/{ident % 97:02d}/{ident}.wav",
                    "size_bytes": 600_000,
                    "duration_seconds": 60.0 + ident % 30,
                    "loudness_dbfs": -20.0,
                    "silence_fraction": 0.1,
                    "metadata": "{}",
                    "status": "captioned",
                    "revision": 1,
                    "attempts": 1,
                    "next_attempt_at": STAMP,
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
            )
            # What the worker stores: segments with their scores, and every word's timing in `words`
            # (about 5 KB a transcript: PostgreSQL compresses it out of line, and the export never reads it).
            segments = [
                {
                    "start": 20.0 * i,
                    "end": 20.0 * i + 19.5,
                    "text": s,
                    "avg_logprob": -0.213,
                    "no_speech_prob": 0.012,
                    "compression_ratio": 1.42,
                }
                for i, s in enumerate(spoken)
            ]
            words = [
                {
                    "start": round(20.0 * i + 0.65 * n, 3),
                    "end": round(20.0 * i + 0.65 * n + 0.5, 3),
                    "word": f" {word}",
                    "probability": round(0.6 + 0.4 * rng.random(), 3),
                }
                for i, s in enumerate(spoken)
                for n, word in enumerate(s.split())
            ]
            batch["transcripts"].append(
                {
                    "id": ident,
                    "recording_id": ident,
                    "revision": 1,
                    "text": " ".join(spoken),
                    "language": "en",
                    "segments": json.dumps(segments),
                    "words": json.dumps(words),
                    "avg_logprob": -0.2,
                    "engine": "faster-whisper",
                    "model": "tiny.en",
                    "engine_version": "1.1.0",
                    "audio_seconds": 60.0,
                    "processing_seconds": 3.0,
                    "word_count": 90,
                    "words_per_minute": 90.0,
                    "flags": "[]",
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
            )
            caption = sentence(rng, 70).capitalize() + "."
            batch["captions"].append(
                {
                    "id": ident,
                    "image_id": ident,
                    "recording_id": ident,
                    "transcript_id": ident,
                    "kind": "single",
                    "dedupe_key": f"single:{ident}:rules:v1",
                    "text": caption,
                    "cleaner": "rules",
                    "model": "",
                    "prompt_version": "v1",
                    "word_count": 70,
                    "faithfulness": 0.97,
                    "unsupported_words": "[]",
                    "flags": "[]",
                    "flagged": False,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "status": "approved",
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
            )
            if points:
                stored, absent = point_pool[ident % len(point_pool)], absent_pool[ident % len(absent_pool)]
                # Rendered as the app's writers store a set (intake, correct_points): migration 0010.
                export_groups, points_text = point_set_export(json.loads(stored), json.loads(absent), ident)
                batch["point_sets"].append(
                    {
                        "id": ident,
                        "recording_id": ident,
                        "version": 1,
                        "points": stored,
                        "absent_labels": absent,
                        "export_groups": export_groups,
                        "points_text": points_text,
                        "note": "",
                        "created_at": STAMP,
                        "updated_at": STAMP,
                    }
                )
            if trace_every and ident % trace_every == 0:
                # Traced over the whole take (60 + ident % 30 seconds, as its recording says).
                batch["traces"].append({**trace_pool[ident % 30], "id": ident, "recording_id": ident})
            if ident % 10 == 0:
                batch["reviews"].append(
                    {
                        "id": ident // 10,
                        "caption_id": ident,
                        "reviewer_id": lead,
                        "decision": "approve",
                        "reason": "",
                        "source": "web",
                        "created_at": STAMP,
                        "updated_at": STAMP,
                    }
                )
        yield batch


TABLES = ("images", "recordings", "transcripts", "captions", "reviews", "point_sets", "traces")


def seed_people(engine: Engine) -> tuple[int, list[int], int]:
    from annotate.security import hash_password

    password = hash_password("bench-password")
    with engine.begin() as conn:
        project_id = conn.execute(
            insert(Project).values(name="bench", instructions="", questions=[]).returning(Project.id)
        ).scalar_one()
        users = []
        for i in range(50):
            users.append(
                conn.execute(
                    insert(User)
                    .values(
                        name=f"annotator{i}", role="annotator", password_hash=password, pseudonym=f"p{i:030d}"
                    )
                    .returning(User.id)
                ).scalar_one()
            )
        lead = conn.execute(
            insert(User)
            .values(name="lead", role="lead", password_hash=password, pseudonym="l" * 30)
            .returning(User.id)
        ).scalar_one()
    return project_id, users, lead


# Columns that hold an id of the copied rows: a copy shifts them by its offset (reviews.id by a tenth).
SHIFTED = ("id", "image_id", "recording_id", "transcript_id", "caption_id")
# Unique text columns: a copy makes them its own with its new id (in hex where the length is fixed:
# PostgreSQL enforces client_uuid's 36 characters, SQLite does not).
UNIQUE_TEXT = {
    "sqlite": {
        "sha256": "substr(sha256, 1, 56) || printf('%08x', id + :off)",
        "client_uuid": "client_uuid || '-' || :off",
        "dedupe_key": "dedupe_key || ':' || :off",
    },
    "postgresql": {
        "sha256": "substr(sha256, 1, 56) || lpad(to_hex(id + :off), 8, '0')",
        "client_uuid": "substr(client_uuid, 1, 28) || lpad(to_hex(id + :off), 8, '0')",
        "dedupe_key": "dedupe_key || ':' || :off",
    },
}


def copy_expression(table: str, column: str, dialect: str = "sqlite") -> str:
    if table == "reviews" and column == "id":
        return "id + :off / 10"
    if column == "export_groups":  # the rendered groups name their take
        return (
            "replace(export_groups, '\"recording_id\":' || recording_id || '}', "
            "'\"recording_id\":' || (recording_id + :off) || '}')"
        )
    if column in SHIFTED:
        return f"{column} + :off"
    return UNIQUE_TEXT[dialect].get(column, column)


def copy_images(cursor: Any, columns_of: dict[str, list[str]], n: int, dialect: str) -> None:
    """Images CHUNK+1..n (and their children) as SQL copies of images 1..CHUNK, already inserted."""
    for offset in range(CHUNK, n, CHUNK):
        last = min(CHUNK, n - offset)  # copy images 1..last as offset+1..offset+last
        for table, columns in columns_of.items():
            owner = "caption_id" if table == "reviews" else "id"  # every other row's id is its image's
            select = ", ".join(copy_expression(table, c, dialect) for c in columns)
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select.replace(':off', str(offset))} "
                f"FROM {table} WHERE {owner} <= {last}"
            )


def load_sqlite(
    engine: Engine,
    n: int,
    project_id: int,
    users: list[int],
    lead: int,
    copies: bool = False,
    **pointing: Any,
) -> None:
    """Insert in bulk; with `copies`, the first CHUNK images are made in Python and the rest are copies of
    them made by SQL (ids shifted, unique columns suffixed): the same rows per image, a seed in seconds."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        columns_of: dict[str, list[str]] = {}
        for batch in rows(min(n, CHUNK) if copies else n, project_id, users, lead, **pointing):
            for table in TABLES:
                if not batch[table]:
                    continue
                columns = columns_of[table] = list(batch[table][0])
                marks = ", ".join("?" for _ in columns)
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    [tuple(r[c] for c in columns) for r in batch[table]],
                )
        if copies:
            copy_images(cursor, columns_of, n, "sqlite")
        cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
    finally:
        raw.close()


def load_postgres(
    engine: Engine,
    n: int,
    project_id: int,
    users: list[int],
    lead: int,
    copies: bool = False,
    **pointing: Any,
) -> None:
    """COPY in bulk; `copies` as for load_sqlite (a million images made in Python and COPYed took over
    16 minutes on the shared VM)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns_of: dict[str, list[str]] = {}
        for batch in rows(min(n, CHUNK) if copies else n, project_id, users, lead, **pointing):
            for table in TABLES:
                if not batch[table]:
                    continue
                columns = columns_of[table] = list(batch[table][0])
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in batch[table]:
                        copy.write_row(tuple(row[c] for c in columns))
        if copies:
            copy_images(cursor, columns_of, n, "postgresql")
        for table in TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        raw.commit()
        driver = raw.driver_connection
        driver.autocommit = True
        driver.execute("VACUUM ANALYZE")
    finally:
        raw.close()


# Runs the CLI in this process, then records the peak resident memory (VmHWM; unlike ru_maxrss it is not
# inherited from the parent across fork/exec) of this process and of every worker it started.
PEAK_WRAPPER = """
import json, sys, threading, time
from pathlib import Path
peaks = {}
def vmhwm(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
def watch():
    import psutil
    me = psutil.Process()
    while True:
        for child in me.children(recursive=True):
            try:
                peaks[f"worker {child.pid}"] = max(peaks.get(f"worker {child.pid}", 0), vmhwm(child.pid))
            except Exception:
                pass
        time.sleep(0.2)
threading.Thread(target=watch, daemon=True).start()
target, sys.argv = sys.argv[1], ["voicecap", *sys.argv[2:]]
from annotate.cli.main import app
try:
    app()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
peaks["main"] = vmhwm("self")
Path(target).write_text(json.dumps({k: round(v, 1) for k, v in peaks.items()}))
sys.exit(code)
"""


def run_export(
    url: str, data_dir: Path, out: Path, formats: list[str], extra: list[str], blobs: str = ""
) -> dict[str, Any]:
    env = {**os.environ, "VOICECAP_DATABASE_URL": url, "VOICECAP_DATA_DIR": str(data_dir)}
    if blobs:
        env["VOICECAP_BLOB_URL"] = blobs
    peak_file = out.parent / "peak.json"
    args = ["export", "bench", "--out", str(out), "--json", *extra]
    for fmt in formats:
        args += ["--format", fmt]
    command = [sys.executable, "-c", PEAK_WRAPPER, str(peak_file), *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"export failed:\n{result.stderr}")
    peaks = json.loads(peak_file.read_text())
    manifest = json.loads(result.stdout)
    return {
        "seconds": round(seconds, 1),
        "export_seconds_in_manifest": manifest["seconds"],
        # CPU seconds of the export and its worker processes: what the wall time would be on idle cores.
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "peak_rss_mb": peaks,
        # Every process's own peak added up: an upper bound on what the export held at any one moment.
        "peak_rss_total_mb": round(sum(peaks.values()), 1),
        "rows": manifest["counts"]["images"],
        "bytes": sum(f["bytes"] for f in manifest["files"]),
        "files": [f["path"] for f in manifest["files"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--format", action="append", dest="formats", help="jsonl (default) and/or parquet")
    parser.add_argument("--keep", action="store_true", help="keep the database and the export")
    parser.add_argument(
        "--reuse",
        metavar="URL",
        help="export from this database (one a --keep run left, its URL printed as database_url) "
        "instead of seeding a new one",
    )
    parser.add_argument("--stores", default="local", help="local and/or s3: export once per blob store")
    parser.add_argument("--points", action="store_true", help="every take has a point set (point mode)")
    parser.add_argument(
        "--copies",
        action="store_true",
        help="make the first 50,000 images in Python and the rest as copies by SQL (fast seeding)",
    )
    parser.add_argument(
        "--trace-every",
        type=int,
        default=0,
        metavar="N",
        help="every Nth take also has a 20 Hz trace over its whole audio (narrate mode); 0: none",
    )
    parser.add_argument("extra", nargs="*", help="more `voicecap export` options, after --")
    args = parser.parse_args()
    formats = args.formats or ["jsonl"]

    work = Path(tempfile.mkdtemp(prefix="voicecap-bench-export-"))
    pg_name = None
    if args.reuse:
        result = run_export(args.reuse, work / "data", work / "out", formats, args.extra)
        print(
            json.dumps(
                {"database_url": args.reuse, "formats": formats, "cores": os.cpu_count(), **result}, indent=2
            )
        )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return
    if args.db == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
    else:
        pg_name = f"voicecap_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = args.pg_url.rsplit("/", 1)[0] + f"/{pg_name}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        project_id, users, lead = seed_people(engine)
        started = time.perf_counter()
        pointing = {"points": args.points, "trace_every": args.trace_every}
        if args.db == "sqlite":
            load_sqlite(engine, args.images, project_id, users, lead, copies=args.copies, **pointing)
        else:
            load_postgres(engine, args.images, project_id, users, lead, copies=args.copies, **pointing)
        load_seconds = time.perf_counter() - started
        engine.dispose()
        stores = args.stores.split(",")
        with object_store(stores) as seaweed:
            results = [
                {
                    "store": store,
                    **run_export(
                        url,
                        work / "data",
                        work / f"out-{n}-{store}",
                        formats,
                        args.extra,
                        blob_url(store, seaweed, work),
                    ),
                }
                for n, store in enumerate(stores)
            ]
        result = results[0] if len(stores) == 1 else {"by_store": results}
        report = {
            "database": args.db,
            "database_url": url,
            "images": args.images,
            "formats": formats,
            "points": args.points,
            "trace_every": args.trace_every,
            "insert_seconds": round(load_seconds, 1),
            "cores": os.cpu_count(),
            **result,
        }
        print(json.dumps(report, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if pg_name:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
