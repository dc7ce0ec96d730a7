"""Benchmark the cleaning stage: the rules cleaner's throughput, and the LLM cleaner's against an
endpoint that takes a fixed time per answer.

    python bench/clean.py                          # both scenarios
    python bench/clean.py --scenario rules --transcripts 5000
    python bench/clean.py --scenario llm --latency 1.0 --concurrency 16 --captions 320

rules: one process, one thread, cleaning realistic 60–90 s descriptions (~180 words; about 40% of
sentences carry fillers, stutters, repeats or self-corrections, drawn from tests/fixtures/
cleaning_cases.yaml, the rest plain description). Reported as transcripts per second of wall time
and of CPU time (the CPU figure is steadier on a busy machine).

llm: tests/support/fake_openai.py, a real uvicorn server speaking the chat-completions protocol,
answers every request after --latency seconds. Two rows: the cleaner alone (`clean_many` over all
transcripts), and the whole clean stage (transcribed Recording rows in a SQLite database, drained by
the worker loop with claims, leases and per-row transactions). The claim batch defaults to twice the
LLM concurrency: a batch smaller than the concurrency caps the calls in flight, and a batch waits for
its slowest call before the next claim, so a little more than one wave keeps the pipe full.

A table goes to stdout and JSON to bench/out/clean.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from db.settings import Settings  # noqa: E402
from transcribe.clean.rules import clean_text  # noqa: E402

OUT = REPO / "bench" / "out"
CASES = yaml.safe_load((REPO / "tests" / "fixtures" / "cleaning_cases.yaml").read_text())
PLAIN = [
    "This is a photograph of a small harbour on a sunny afternoon.",
    "In the foreground there are four wooden rowing boats tied to a grey stone pier.",
    "The water is calm and a deep green colour close to the pier.",
    "On the left a red and white lighthouse stands on a rocky point.",
    "Behind the boats there is a row of houses painted yellow, blue and pink.",
    "A man in an orange jacket is carrying a coil of rope towards the nearest boat.",
    "Two seagulls are sitting on the railing at the end of the pier.",
    "The sky is pale blue with a few thin white clouds near the horizon.",
    "A sign on the wall of the harbour office says harbour master in black capital letters.",
    "There is a stack of yellow plastic crates next to the office door.",
    "The photo looks like it was taken from a hill above the harbour.",
    "In the background green hills rise behind the houses and a road winds up between them.",
    "A small white van is parked on the road with its back doors open.",
    "The light is warm and the shadows point towards the right of the picture.",
    "On the right edge of the image part of a blue fishing net hangs over a wall.",
    "The stones of the pier are wet near the water and dry further up.",
    "One of the boats has the number twelve painted on its side in white.",
    "A child in a red hat is standing near the lighthouse holding an adult's hand.",
    "The overall style is a colour photograph with natural light and sharp focus.",
    "There are about twenty people walking along the promenade in the distance.",
]


@dataclass
class Row:
    scenario: str
    items: int
    seconds: float
    per_second: float
    cpu_per_second: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def make_corpus(count: int, seed: int = 7) -> list[str]:
    """Descriptions of ~180 words, about 40% of their sentences disfluent."""
    rng = random.Random(seed)
    noisy = [case["spoken"] for case in CASES if len(case["spoken"].split()) > 4]
    corpus = []
    for _ in range(count):
        sentences: list[str] = []
        while sum(len(s.split()) for s in sentences) < 180:
            sentences.append(rng.choice(noisy) if rng.random() < 0.4 else rng.choice(PLAIN))
        corpus.append(" ".join(sentences))
    return corpus


def bench_rules(transcripts: int, repeat: int) -> Row:
    corpus = make_corpus(transcripts)
    words = sum(len(text.split()) for text in corpus)
    for text in corpus[:50]:
        clean_text(text)  # warm the regex cache
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for text in corpus:
            clean_text(text)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return Row(
        "rules",
        transcripts,
        round(best_wall, 3),
        round(transcripts / best_wall, 1),
        round(transcripts / best_cpu, 1),
        {"words_per_transcript": round(words / transcripts, 1), "best_of": repeat},
    )


def _llm_settings(base_url: str, concurrency: int, **extra: Any) -> Settings:
    return Settings(
        cleaner="llm",
        llm_base_url=base_url,
        llm_model="fake-model",
        llm_concurrency=concurrency,
        llm_timeout_seconds=30,
        **extra,
    )


def bench_llm_cleaner(captions: int, latency: float, concurrency: int) -> Row:
    from tests.support.fake_openai import FakeOpenAI, echo
    from transcribe.clean.llm import LLMCleaner

    corpus = make_corpus(captions, seed=11)
    with FakeOpenAI(echo(delay=latency)) as fake:
        cleaner = LLMCleaner(_llm_settings(fake.base_url, concurrency))
        started = time.perf_counter()
        results = cleaner.clean_many(corpus)
        seconds = time.perf_counter() - started
        max_in_flight = fake.stats.max_in_flight
    failures = sum(1 for result in results if isinstance(result, Exception))
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in results if not isinstance(r, Exception))
    return Row(
        "llm: cleaner",
        captions,
        round(seconds, 2),
        round(captions / seconds, 2),
        notes={
            "latency_s": latency,
            "concurrency": concurrency,
            "max_in_flight": max_in_flight,
            "failures": failures,
            "tokens_per_s": round(tokens / seconds),
        },
    )


def _seed_transcribed(session: Any, texts: list[str]) -> None:
    from db.models import RecordingStatus
    from tests.support import factories

    project = factories.add_project(session, "bench")
    user = factories.add_user(session, "bench")
    for text in texts:
        image = factories.add_image(session, project)
        recording = factories.add_recording(
            session, image, user, duration_seconds=75, status=RecordingStatus.transcribed
        )
        factories.add_transcript(session, recording, text, engine="bench", model="bench", engine_version="0")
    session.commit()


def bench_llm_stage(captions: int, latency: float, concurrency: int, batch: int) -> Row:
    from sqlalchemy import func, select

    from db.migrate import upgrade
    from db.models import Caption, Recording, RecordingStatus
    from db.session import make_engine, session_factory
    from tests.support.fake_openai import FakeOpenAI, echo
    from transcribe.stages.clean import CleanProcessor
    from transcribe.worker import Worker, WorkerConfig

    corpus = make_corpus(captions, seed=13)
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(echo(delay=latency)) as fake:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        factory = session_factory(engine)
        with factory() as session:
            _seed_transcribed(session, corpus)
        settings = _llm_settings(fake.base_url, concurrency)
        processor = CleanProcessor(settings=settings)
        config = WorkerConfig(batch_size=batch, lease_seconds=120, poll_seconds=0.05, backoff_seconds=0)
        started = time.perf_counter()
        Worker(factory, [processor], config).run(drain=True)
        seconds = time.perf_counter() - started
        with factory() as session:
            stored = session.scalar(select(func.count(Caption.id)))
            captioned = session.scalar(
                select(func.count()).where(Recording.status == RecordingStatus.captioned)
            )
        engine.dispose()
    return Row(
        "llm: worker, SQLite",
        captions,
        round(seconds, 2),
        round(captions / seconds, 2),
        notes={
            "latency_s": latency,
            "concurrency": concurrency,
            "batch": batch,
            "captioned": captioned,
            "captions_stored": stored,
        },
    )


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", choices=["rules", "llm"], help="default: both")
    parser.add_argument("--transcripts", type=int, default=5000, help="rules: descriptions to clean")
    parser.add_argument("--repeat", type=int, default=3, help="rules: timed passes; the fastest is kept")
    parser.add_argument("--captions", type=int, default=320, help="llm: captions to write")
    parser.add_argument("--latency", type=float, default=1.0, help="llm: seconds the endpoint takes")
    parser.add_argument("--concurrency", type=int, default=16, help="llm: calls in flight")
    parser.add_argument("--batch", type=int, default=0, help="llm: worker claim batch (0 = 2 x concurrency)")
    parser.add_argument("--out", type=Path, default=OUT / "clean.json")
    args = parser.parse_args(argv)

    rows: list[Row] = []
    for name in args.scenario or ["rules", "llm"]:
        if name == "rules":
            rows.append(bench_rules(args.transcripts, args.repeat))
        else:
            rows.append(bench_llm_cleaner(args.captions, args.latency, args.concurrency))
            batch = args.batch or 2 * args.concurrency
            rows.append(bench_llm_stage(args.captions, args.latency, args.concurrency, batch))

    print(f"{'scenario':22} {'items':>6} {'seconds':>8} {'per s':>9} {'per CPU s':>10}  notes")
    for row in rows:
        cpu = f"{row.cpu_per_second:.1f}" if row.cpu_per_second else "-"
        notes = ", ".join(f"{key}={value}" for key, value in row.notes.items())
        figures = f"{row.items:>6} {row.seconds:>8.2f} {row.per_second:>9.1f} {cpu:>10}"
        print(f"{row.scenario:22} {figures}  {notes}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.write_text(json.dumps({"machine": machine, "rows": [asdict(r) for r in rows]}, indent=2))
    return rows


if __name__ == "__main__":
    main()
