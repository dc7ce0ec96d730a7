"""Benchmark the speech-to-text engines on the committed speech clips, in one run, on equal terms.

    python bench/engines.py                       # all engine configurations, 3 repeats
    python bench/engines.py --threads 2 --beam-size 5 --repeat 5
    python bench/engines.py --configs faster-int8,openai-fp32 --scenario engines

Every configuration transcribes the same audio (the four fixture clips plus one ~60 s "recording"
made by joining them with pauses, the length annotators speak) with the same beam size, best-of,
CPU threads, VAD and word timestamps. Reported per configuration: real-time factor (processing
seconds per audio second; lower is faster), speed relative to openai-whisper, and corpus WER on
normalised text (tests/support/wer.py). A table goes to stdout and JSON to bench/out/transcribe.json.

Scenarios are pluggable: `@scenario("name")` registers a function `(BenchConfig, list[Clip]) ->
list[Row]`; `--scenario name` runs it. The engines scenario times `engine.transcribe` directly; a
worker scenario (enqueue the clips as recordings, drain them with the worker, time it end to end)
can be added the same way and its rows compare one to one with the engine rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import Clip  # noqa: E402
from tests.support.wer import normalize_text  # noqa: E402
from transcribe.audio import decode_audio  # noqa: E402
from transcribe.engines.base import SAMPLE_RATE, available_cpus  # noqa: E402

SPEECH = REPO / "tests" / "fixtures" / "speech"
OUT = REPO / "bench" / "out"


@dataclass
class BenchConfig:
    threads: int
    beam_size: int
    repeat: int
    configs: list[str]
    vad_filter: bool = True
    word_timestamps: bool = True


@dataclass
class Row:
    scenario: str
    config: str
    engine: str
    model: str
    device: str
    compute_type: str
    batched: bool
    beam_size: int
    threads: int
    audio_seconds: float
    processing_seconds: float  # fastest of the repeats, total over all clips
    real_time_factor: float
    wer: float
    load_seconds: float
    cpu_seconds: float = 0.0  # process CPU time of the fastest pass (all threads)
    all_passes_seconds: list[float] = field(default_factory=list)
    speedup_vs_openai: float | None = None
    per_clip_wer: dict[str, float] = field(default_factory=dict)


# name -> (engine, keyword arguments); "faster-int8" is the production default on CPU.
ENGINE_CONFIGS: dict[str, tuple[str, dict]] = {
    "faster-int8": ("faster-whisper", {"compute_type": "int8"}),
    "faster-int8-batched": ("faster-whisper", {"compute_type": "int8", "batched": True}),
    "faster-fp32": ("faster-whisper", {"compute_type": "float32"}),
    "openai-fp32": ("openai-whisper", {}),
}

SCENARIOS: dict[str, Callable[[BenchConfig, list[Clip]], list[Row]]] = {}


def scenario(name: str) -> Callable:
    def register(fn: Callable[[BenchConfig, list[Clip]], list[Row]]) -> Callable:
        SCENARIOS[name] = fn
        return fn

    return register


def load_clips(pause_seconds: float = 1.5) -> list[Clip]:
    """The fixture clips, plus all of them joined with pauses into one annotator-length recording."""
    manifest = json.loads((SPEECH / "clips.json").read_text())
    clips = [Clip(item["file"], decode_audio(SPEECH / item["file"]), item["text"]) for item in manifest]
    pause = np.zeros(int(pause_seconds * SAMPLE_RATE), dtype=np.float32)
    joined = np.concatenate([part for clip in clips for part in (clip.audio, pause)])
    clips.append(Clip("all-joined", joined, " ".join(clip.text for clip in clips)))
    return clips


def make_engine(config_name: str, bench: BenchConfig):
    engine_name, extra = ENGINE_CONFIGS[config_name]
    common = {
        "model": "tiny.en",
        "device": "cpu",
        "cpu_threads": bench.threads,
        "beam_size": bench.beam_size,
        "vad_filter": bench.vad_filter,
        "word_timestamps": bench.word_timestamps,
    }
    if engine_name == "faster-whisper":
        from transcribe.engines.faster import FasterWhisperEngine

        return FasterWhisperEngine(**common, **extra)
    from transcribe.engines.reference import OpenAIWhisperEngine

    return OpenAIWhisperEngine(**common, **extra)


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    import jiwer

    return float(jiwer.wer([normalize_text(r) for r in references], [normalize_text(h) for h in hypotheses]))


@scenario("engines")
def engine_rows(bench: BenchConfig, clips: list[Clip]) -> list[Row]:
    """Each engine configuration called directly: load once, warm up, then `repeat` timed passes.

    Passes are interleaved (A B C, A B C, ...) so that a burst of load from other processes on a
    shared machine hits every configuration alike; the fastest pass of each is reported.
    """
    engines, load_seconds = {}, {}
    for config_name in bench.configs:
        started = time.perf_counter()
        engines[config_name] = make_engine(config_name, bench)
        load_seconds[config_name] = time.perf_counter() - started
        engines[config_name].transcribe(clips[0].audio)  # warm-up: first-call setup is not throughput
    wall: dict[str, list[float]] = {name: [] for name in engines}
    cpu: dict[str, list[float]] = {name: [] for name in engines}
    texts: dict[str, list[str]] = {}
    for attempt in range(bench.repeat):
        for name, engine in engines.items():
            cpu_started = time.process_time()
            results = engine.transcribe_batch([clip.audio for clip in clips])
            cpu[name].append(time.process_time() - cpu_started)
            wall[name].append(sum(result.processing_seconds for result in results))
            texts[name] = [result.text for result in results]
            print(f"  pass {attempt + 1} {name}: {wall[name][-1]:.2f} s", file=sys.stderr)
    audio_seconds = sum(clip.seconds for clip in clips)
    rows = []
    for name, engine in engines.items():
        processing = min(wall[name])
        pairs = zip(clips, texts[name], strict=True)
        rows.append(
            Row(
                scenario="engines",
                config=name,
                engine=engine.name,
                model=engine.model_name,
                device=engine.device,
                compute_type=getattr(engine, "compute_type", "float32"),
                batched=bool(getattr(engine, "batched", False)),
                beam_size=bench.beam_size,
                threads=engine.cpu_threads,
                audio_seconds=round(audio_seconds, 2),
                processing_seconds=round(processing, 3),
                real_time_factor=round(processing / audio_seconds, 4),
                wer=round(corpus_wer([c.text for c in clips], texts[name]), 4),
                load_seconds=round(load_seconds[name], 2),
                cpu_seconds=round(min(cpu[name]), 3),
                all_passes_seconds=[round(value, 3) for value in wall[name]],
                per_clip_wer={c.name: round(corpus_wer([c.text], [t]), 4) for c, t in pairs},
            )
        )
    return rows


def add_speedups(rows: list[Row]) -> None:
    baseline = next((r for r in rows if r.engine == "openai-whisper"), None)
    for row in rows:
        if baseline is not None and row.processing_seconds > 0:
            row.speedup_vs_openai = round(baseline.processing_seconds / row.processing_seconds, 2)


def table(rows: list[Row]) -> str:
    header = "| config | compute | batched | beam | threads | wall s | CPU s | RTF | vs openai | WER |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        speedup = f"{r.speedup_vs_openai:.2f}x" if r.speedup_vs_openai is not None else "-"
        cells = [r.config, r.compute_type, "yes" if r.batched else "no", r.beam_size, r.threads]
        cells += [f"{r.processing_seconds:.2f}", f"{r.cpu_seconds:.2f}", f"{r.real_time_factor:.4f}"]
        cells += [speedup, f"{r.wer:.3f}"]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def environment() -> dict:
    import ctranslate2
    import faster_whisper

    env = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpus_available": available_cpus(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
    }
    try:
        import torch
        import whisper

        env |= {"openai_whisper": whisper.__version__, "torch": torch.__version__}
    except ImportError:
        pass
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for every engine (0 = all cores)")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the fastest is reported")
    parser.add_argument("--configs", default=",".join(ENGINE_CONFIGS), help="comma-separated engine configs")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: engines")
    parser.add_argument("--no-vad", action="store_true", help="turn the VAD filter off for all engines")
    parser.add_argument("--out", type=Path, default=OUT / "transcribe.json")
    args = parser.parse_args(argv)

    bench = BenchConfig(
        threads=args.threads or available_cpus(),
        beam_size=args.beam_size,
        repeat=args.repeat,
        configs=[name.strip() for name in args.configs.split(",") if name.strip()],
        vad_filter=not args.no_vad,
    )
    unknown = [name for name in bench.configs if name not in ENGINE_CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; known: {', '.join(ENGINE_CONFIGS)}")
    clips = load_clips()
    print(
        f"{len(clips)} items, {sum(c.seconds for c in clips):.1f} s of audio; beam {bench.beam_size}, "
        f"{bench.threads} threads, VAD {'on' if bench.vad_filter else 'off'}, word timestamps on",
        file=sys.stderr,
    )
    rows: list[Row] = []
    for name in args.scenario or ["engines"]:
        rows += SCENARIOS[name](bench, clips)
    add_speedups(rows)
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment(), "settings": asdict(bench), "rows": [asdict(r) for r in rows]}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
