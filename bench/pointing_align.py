"""Benchmark pointing alignment (transcribe/pointing_align.py) on synthetic takes.

    python bench/pointing_align.py                      # 100,000 takes on every core
    python bench/pointing_align.py --takes 10000 --workers 1

Each take is a 90 s description: ~200 Whisper-shaped words (sentences with counts and labels, such as
"there are three garden chairs on the pier"), a 30 Hz trace in one to three strokes (~2,700 samples),
and ~10 points timed near the words they name; half the takes are point mode (4 labels), half narrate.
Takes are made in each worker process before its clock starts (making them is not alignment); the
target is the alignment's wall time, from the first worker's start to the last one's end, with one
process per core. A table goes to stdout and JSON to bench/out/pointing_align.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from transcribe.pointing_align import align  # noqa: E402

OUT = REPO / "bench" / "out"
SECONDS = 90.0
HZ = 30
LABELS = ["garden chair", "boat", "person", "dog"]
COUNTS = ["one", "two", "three", "four", "a pair of", "five", "no", "3", "twenty"]
THINGS = ["garden chairs", "boats", "people", "dogs", "red umbrellas", "tall trees", "white houses"]
PLACES = ["on the pier", "near the water", "in the background", "behind the fence", "on the left"]
FILLER = [
    "the sky is clear and bright",
    "a calm lake stretches to the hills",
    "the light is warm and soft",
    "there is a small wooden table",
]


def make_take(rng: random.Random) -> dict[str, Any]:
    words: list[str] = []
    while len(words) < 200:
        if rng.random() < 0.6:
            sentence = f"there are {rng.choice(COUNTS)} {rng.choice(THINGS)} {rng.choice(PLACES)}"
        else:
            sentence = rng.choice(FILLER)
        parts = sentence.split()
        parts[-1] += rng.choice([".", ","])
        words.extend(parts)
    step = SECONDS / len(words)
    timed = [
        {"start": round(k * step, 2), "end": round((k + 1) * step, 2), "word": w, "probability": 0.9}
        for k, w in enumerate(words)
    ]
    samples = [[rng.random(), rng.random(), round(k / HZ, 4)] for k in range(int(SECONDS * HZ))]
    cuts = sorted(rng.sample(range(1, len(samples)), rng.randint(0, 2)))
    strokes = [samples[a:b] for a, b in zip([0, *cuts], [*cuts, len(samples)], strict=True)]
    point_mode = rng.random() < 0.5
    points = []
    for _ in range(10):
        word = rng.choice(timed)
        label = rng.choice(LABELS) if point_mode else None
        points.append(
            {"x": rng.random(), "y": rng.random(), "t": word["start"] + rng.uniform(-1, 1), "label": label}
        )
    return {"words": timed, "segments": strokes, "points": points, "labels": LABELS if point_mode else []}


def run_worker(job: tuple[int, int, int]) -> dict[str, Any]:
    seed, count, distinct = job
    rng = random.Random(seed)
    # A pool of distinct takes reused round-robin: making 50,000 takes per process would cost more
    # memory (and time) than the alignment being measured, and alignment caches nothing per take.
    takes = [make_take(rng) for _ in range(min(count, distinct))]
    started, cpu = time.time(), time.process_time()
    mismatches = links = 0
    for k in range(count):
        take = takes[k % len(takes)]
        result = align(take["words"], take["segments"], take["points"], take["labels"], "en", 3.0)
        mismatches += result.count_mismatch
        links += sum(link["phrase"] is not None for link in result.links)
    return {
        "started": started,
        "ended": time.time(),
        "cpu_seconds": time.process_time() - cpu,
        "takes": count,
        "mismatches": mismatches,
        "links": links,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--takes", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--distinct", type=int, default=200, help="distinct takes made per worker")
    args = parser.parse_args()
    share = [args.takes // args.workers + (k < args.takes % args.workers) for k in range(args.workers)]
    begun = time.time()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run_worker, [(k, n, args.distinct) for k, n in enumerate(share)])
    total = time.time() - begun
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    cpu = sum(r["cpu_seconds"] for r in results)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "takes": args.takes,
        "workers": args.workers,
        "align_wall_seconds": round(wall, 2),
        "run_wall_seconds": round(total, 2),
        "cpu_ms_per_take": round(1000 * cpu / args.takes, 3),
        "takes_per_second": round(args.takes / wall, 1),
        "count_mismatch_share": round(sum(r["mismatches"] for r in results) / args.takes, 3),
        "linked_points_share": round(sum(r["links"] for r in results) / (10 * args.takes), 3),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pointing_align.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| takes | workers | alignment wall (s) | whole run (s) | CPU ms/take | takes/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.takes:,} | {args.workers} | {report['align_wall_seconds']} | {report['run_wall_seconds']} "
        f"| {report['cpu_ms_per_take']} | {report['takes_per_second']:,} |"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
