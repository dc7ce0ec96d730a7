"""Upload latency of a narrated take (audio + a 90 s trace + points) against the same take alone.

    python bench/pointing_upload.py                   # 30 uploads of each kind, SQLite
    python bench/pointing_upload.py --uploads 60 --databases sqlite,postgresql

One `voicecap serve` (a real uvicorn subprocess) on a fresh database holds two projects: describe and
narrate. Two annotators upload the same distinct 90 s webm/opus takes, one after another and
interleaved (plain, pointing, pointing, plain, …) so that drift in the machine's load falls on both
kinds alike: the describe annotator as a raw body, the narrate annotator as multipart/form-data with a
`pointing` part (a 90 s trace at 30 Hz, 2,700 samples in strokes, plus 20 points) before the audio.
Each latency is request sent → JSON answer (streamed, pointing parsed and checked, audio decoded,
measured and transcoded, recording + trace + point set committed). Target: the pointing upload's p95
within 20% of the plain one's. A table goes to stdout, JSON to bench/out/pointing_upload.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.upload import (  # noqa: E402
    database,
    login,
    make_takes,
    percentile,
    seed_project,
    seed_users,
    serve,
    write_results,
)
from db.migrate import upgrade  # noqa: E402
from db.session import make_engine  # noqa: E402

TRACE_HZ = 30
POINTS = 20


def pointing_for(seconds: float, seed: int) -> bytes:
    """A pointer wandering over the image at TRACE_HZ for the whole take, lifted every 10 s, and
    POINTS clicks spread over the take: what a narrating annotator's page sends."""
    rng = random.Random(seed)
    strokes: list[list[list[float]]] = []
    x, y = 0.5, 0.5
    samples = int(seconds * TRACE_HZ)
    for n in range(samples):
        if n % (10 * TRACE_HZ) == 0:
            strokes.append([])
        x = min(1.0, max(0.0, x + rng.uniform(-0.01, 0.01)))
        y = min(1.0, max(0.0, y + rng.uniform(-0.01, 0.01)))
        strokes[-1].append([round(x, 4), round(y, 4), round((n + 1) / TRACE_HZ, 3)])
    points = [
        {
            "x": round(rng.random(), 4),
            "y": round(rng.random(), 4),
            "t": round(seconds * (k + 0.5) / POINTS, 3),
        }
        for k in range(POINTS)
    ]
    return json.dumps({"version": 1, "traces": strokes, "points": points, "absent_labels": []}).encode()


def upload(client: httpx.Client, project_id: int, take: bytes, pointing: bytes | None) -> tuple[float, str]:
    """One take (the next task asked for first, untimed); returns (seconds, error or "")."""
    task = client.post("/api/tasks/next", json={"project_id": project_id}).json()["task"]
    url = f"/api/recordings/{uuid.uuid4()}"
    params = {"assignment_id": task["assignment_id"]}
    began = time.perf_counter()
    if pointing is None:
        response = client.put(url, params=params, content=take, headers={"Content-Type": "audio/webm"})
    else:
        files = [
            ("pointing", ("pointing.json", pointing, "application/json")),
            ("audio", ("take.webm", take, "audio/webm;codecs=opus")),
        ]
        response = client.put(url, params=params, files=files)
    elapsed = time.perf_counter() - began
    return elapsed, "" if response.status_code == 201 else f"{response.status_code} {response.text[:200]}"


def run(kind: str, uploads: int, seconds: float, takes: list[bytes]) -> dict[str, Any]:
    pointing = [pointing_for(seconds, n) for n in range(uploads)]
    with tempfile.TemporaryDirectory(prefix="voicecap-bench-") as tmp:
        workdir = Path(tmp)
        with database(kind, workdir) as url:
            engine = make_engine(url)
            upgrade(engine)
            limits = {"min_seconds": 10, "max_seconds": seconds + 30, "per_image": 1}
            plain_project = seed_project(engine, uploads, **limits)
            narrate_project = seed_project(engine, uploads, mode="narrate", **limits)
            plain_user, narrate_user = seed_users(engine, 2)
            engine.dispose()
            with serve(url, workdir, str(workdir / "blobs")) as (base, pid):
                server = psutil.Process(pid)
                clients = {"plain": login(base, plain_user), "pointing": login(base, narrate_user)}
                latencies: dict[str, list[float]] = {"plain": [], "pointing": []}
                cpu: dict[str, float] = {"plain": 0.0, "pointing": 0.0}
                errors: list[str] = []
                upload(clients["plain"], plain_project, takes[0], None)  # warm-up, not counted
                upload(clients["pointing"], narrate_project, takes[0], pointing[0])
                for n in range(uploads - 1):
                    order = ("plain", "pointing") if n % 2 == 0 else ("pointing", "plain")
                    for variant in order:
                        project = plain_project if variant == "plain" else narrate_project
                        body = None if variant == "plain" else pointing[n]
                        before = sum(server.cpu_times()[:2])
                        elapsed, error = upload(clients[variant], project, takes[n % len(takes)], body)
                        cpu[variant] += sum(server.cpu_times()[:2]) - before
                        if error:
                            errors.append(f"{variant}: {error}")
                        else:
                            latencies[variant].append(elapsed)
                for client in clients.values():
                    client.close()
    summary: dict[str, Any] = {
        "database": kind,
        "take_seconds": seconds,
        "take_kb": round(sum(len(t) for t in takes) / len(takes) / 1024, 1),
        "pointing_kb": round(sum(len(p) for p in pointing) / len(pointing) / 1024, 1),
        "trace_samples": int(seconds * TRACE_HZ),
        "points": POINTS,
        "errors": len(errors),
        "error_samples": errors[:3],
    }
    for variant, values in latencies.items():
        summary[variant] = {
            "uploads": len(values),
            "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p95_ms": round(percentile(values, 95) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1) if values else None,
            "server_cpu_ms_per_upload": round(cpu[variant] / max(1, len(values)) * 1000, 1),
        }
    summary["p95_ratio"] = round(summary["pointing"]["p95_ms"] / summary["plain"]["p95_ms"], 3)
    summary["load_average_after"] = round(os.getloadavg()[0], 1)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite")
    parser.add_argument("--uploads", type=int, default=30, help="Uploads of each kind (plus one warm-up).")
    parser.add_argument("--seconds", type=float, default=90.0, help="Length of each take and its trace.")
    parser.add_argument("--takes", type=int, default=6, help="Distinct takes, used in turn.")
    args = parser.parse_args()

    print(f"encoding {args.takes} distinct {args.seconds:g} s opus takes…", flush=True)
    takes = make_takes(args.takes, args.seconds)
    results = []
    for kind in args.databases.split(","):
        result = run(kind, args.uploads, args.seconds, takes)
        results.append(result)
        print(json.dumps(result), flush=True)
    print()
    print(
        "| database | upload | uploads | errors | p50 ms | p95 ms | max ms | server CPU ms/upload "
        "| p95 ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for variant in ("plain", "pointing"):
            v = r[variant]
            ratio = r["p95_ratio"] if variant == "pointing" else ""
            print(
                f"| {r['database']} | {variant} | {v['uploads']} | {r['errors']} | {v['p50_ms']} | "
                f"{v['p95_ms']} | {v['max_ms']} | {v['server_cpu_ms_per_upload']} | {ratio} |"
            )
    write_results("pointing_upload.json", args, results)


if __name__ == "__main__":
    main()
