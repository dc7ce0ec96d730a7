""" "Next image" latency with 100,000 images in the project, over HTTP against one `voicecap serve`.

    python bench/next_image.py                              # SQLite and PostgreSQL
    python bench/next_image.py --databases postgresql --images 100000 --annotators 20 --rounds 25

The project holds --images image rows (a fifth of them already described: done_count = per_image) and
--annotators annotators. Each annotator, concurrently, asks POST /api/tasks/next, then finishes the
image the way an accepted upload does (assignment submitted, done_count + 1, in the database directly:
audio is bench/upload.py's business), and asks again, --rounds times. Every "next" that hands out a new
lease is timed (request sent → JSON answer, login and session checks included). Target: p95 under
50 ms. A table goes to stdout, JSON to bench/out/next_image.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import update  # noqa: E402
from upload import database, login, percentile, seed_project, seed_users, serve  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import Assignment, AssignmentStatus, Image  # noqa: E402
from db.session import make_engine  # noqa: E402

OUT = REPO / "bench" / "out"


def run(kind: str, images: int, annotators: int, rounds: int, per_image: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="voicecap-bench-") as tmp:
        workdir = Path(tmp)
        with database(kind, workdir) as url:
            engine = make_engine(url)
            upgrade(engine)
            t0 = time.perf_counter()
            project_id = seed_project(engine, images, min_seconds=30, max_seconds=120, per_image=per_image)
            with engine.begin() as conn:  # a fifth of the project is already done
                conn.execute(
                    update(Image)
                    .where(Image.project_id == project_id, Image.id % 5 == 0)
                    .values(done_count=per_image)
                )
            names = seed_users(engine, annotators)
            seeded = time.perf_counter() - t0
            with serve(url, workdir) as (base, _pid):
                clients = [login(base, name) for name in names]
                latencies: list[float] = []
                errors: list[str] = []
                lock = threading.Lock()
                barrier = threading.Barrier(annotators)

                def next_and_finish(client) -> None:
                    began = time.perf_counter()
                    response = client.post("/api/tasks/next", json={"project_id": project_id})
                    elapsed = time.perf_counter() - began
                    task = response.json().get("task") if response.status_code == 200 else None
                    if not task:
                        raise RuntimeError(f"{response.status_code} {response.text[:200]}")
                    with lock:
                        latencies.append(elapsed)
                    with engine.begin() as conn:  # what an accepted upload does
                        conn.execute(
                            update(Assignment)
                            .where(Assignment.id == task["assignment_id"])
                            .values(status=AssignmentStatus.submitted)
                        )
                        conn.execute(
                            update(Image)
                            .where(Image.id == task["image"]["id"])
                            .values(done_count=Image.done_count + 1)
                        )

                def annotator(n: int) -> None:
                    barrier.wait(timeout=120)
                    for _ in range(rounds):
                        try:
                            next_and_finish(clients[n])
                        except Exception as exc:  # counted, not fatal: the table shows errors
                            with lock:
                                errors.append(repr(exc))
                            return

                threads = [threading.Thread(target=annotator, args=(n,)) for n in range(annotators)]
                wall = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall = time.perf_counter() - wall
                for client in clients:
                    client.close()
            engine.dispose()
    return {
        "database": kind,
        "images": images,
        "per_image": per_image,
        "annotators": annotators,
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "requests_per_s": round(len(latencies) / wall, 1),
        "seed_s": round(seeded, 1),
        "load_average_after": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--per-image", type=int, default=1)
    args = parser.parse_args()

    results = []
    for kind in args.databases.split(","):
        result = run(kind, args.images, args.annotators, args.rounds, args.per_image)
        results.append(result)
        print(json.dumps(result), flush=True)
    print()
    print("| database | images | annotators | requests | errors | p50 ms | p95 ms | max ms | req/s | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['database']} | {r['images']:,} | {r['annotators']} | {r['requests']} | {r['errors']} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | {r['requests_per_s']} | "
            f"{r['load_average_after']} |"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "args": vars(args),
    }
    (OUT / "next_image.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
