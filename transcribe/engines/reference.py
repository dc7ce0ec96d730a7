"""openai-whisper (PyTorch): the reference engine, installed with the `openai-whisper` extra.

It is handed decoded samples, never a file name, so openai-whisper never runs the `ffmpeg` binary.
Models: an official name (openai-whisper's own loader; it downloads if not cached, for real
deployments), a `.pt` checkpoint, or a CTranslate2 directory (including the bundled "tiny.en"),
which is converted in memory by `transcribe.ct2_to_openai`. openai-whisper has no VAD of its own;
with `vad_filter` on, faster-whisper's Silero VAD cuts the silence out first and segment times are
mapped back onto the original audio, as faster-whisper does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from transcribe.engines.base import (
    SAMPLE_RATE,
    Segment,
    TranscriptResult,
    Word,
    as_audio_array,
    build_result,
    default_language,
    resolve_threads,
)
from transcribe.model_paths import resolve_openai_model


class OpenAIWhisperEngine:
    name = "openai-whisper"

    def __init__(
        self,
        model: str = "tiny.en",
        *,
        device: str = "auto",
        cpu_threads: int = 0,
        beam_size: int = 5,
        vad_filter: bool = True,
        language: str | None = None,
        word_timestamps: bool = True,
    ) -> None:
        try:
            import torch
            import whisper
        except ImportError as exc:  # the optional extra
            raise ImportError("openai-whisper engine: `pip install voicecap[openai-whisper]`") from exc

        self.model_name = model
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.cpu_threads = resolve_threads(cpu_threads)
        _keep_numba_off_openmp()
        if self.device == "cpu":
            # Process-wide in PyTorch: a worker holds one engine, so this is the worker's setting.
            torch.set_num_threads(self.cpu_threads)
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.language = default_language(model, language)
        self.word_timestamps = word_timestamps
        self.engine_version = f"{whisper.__version__} (torch {torch.__version__})"[:50]
        self.model = _load_model(model, self.device)

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> TranscriptResult:
        import torch
        import whisper

        audio = as_audio_array(audio)
        if self.device == "cpu" and torch.get_num_threads() != self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)  # something else in the process changed it
        started = time.perf_counter()
        speech, timeline = _speech_only(audio) if self.vad_filter else (audio, None)
        segments: list[Segment] = []
        language_code = language or self.language or "en"
        if len(speech) > 0:
            # Same decoding as faster-whisper's defaults: beam at temperature 0, best-of-5 on fallback.
            output = whisper.transcribe(
                self.model,
                speech,
                language=language or self.language,
                beam_size=self.beam_size,
                best_of=5,
                fp16=self.device == "cuda",
                word_timestamps=self.word_timestamps,
                verbose=None,
            )
            language_code = output.get("language") or language_code
            segments = [_segment(raw, timeline) for raw in output["segments"]]
        return build_result(
            segments,
            language=language_code,
            engine=self.name,
            model=self.model_name,
            engine_version=self.engine_version,
            audio_seconds=len(audio) / SAMPLE_RATE,
            processing_seconds=time.perf_counter() - started,
        )

    def transcribe_batch(
        self, audios: list[np.ndarray], language: str | None = None
    ) -> list[TranscriptResult]:
        # openai-whisper's transcribe() handles one recording at a time; the model stays loaded.
        return [self.transcribe(audio, language) for audio in audios]


def _keep_numba_off_openmp() -> None:
    """Stop openai-whisper's word-timestamp DTW (numba, parallel=True) from slowing PyTorch down.

    numba's default OpenMP threading layer shares the OpenMP runtime with PyTorch and resets its
    thread count to all cores; on a busy machine every later tensor op then waits at an OpenMP
    barrier (measured: layer_norm of one token 2.5 us -> 2-12 ms, a 12 s clip 3 -> 17-24 CPU s).
    numba's own `workqueue` layer keeps its threads to itself. An explicit choice is respected.
    """
    try:
        import numba
    except ImportError:
        return
    if numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"


def _load_model(model: str, device: str):
    import torch
    import whisper

    source = resolve_openai_model(model)
    if source.kind == "name":
        return whisper.load_model(source.location, device=device)
    if source.kind == "ct2_dir":
        from transcribe.ct2_to_openai import ct2_to_openai_checkpoint

        checkpoint = ct2_to_openai_checkpoint(source.location)
    else:
        checkpoint = torch.load(source.location, map_location="cpu", weights_only=True)
    loaded = whisper.model.Whisper(whisper.model.ModelDimensions(**checkpoint["dims"]))
    loaded.load_state_dict(checkpoint["model_state_dict"])
    _set_alignment_heads(loaded, checkpoint, Path(source.location).name)
    return loaded.to(device)


def _set_alignment_heads(model, checkpoint: dict[str, Any], file_name: str) -> None:
    """Word timestamps use the heads known to align with speech; the default (last half) is worse."""
    import torch
    import whisper

    heads = checkpoint.get("alignment_heads")
    if heads:
        mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
        return
    official = whisper._ALIGNMENT_HEADS.get(file_name.removesuffix(".pt"))
    if official is not None:  # an official checkpoint file, e.g. ~/.cache/whisper/tiny.en.pt
        model.set_alignment_heads(official)


class _Timeline:
    """Maps times in the speech-only audio back to the original recording."""

    def __init__(self, chunks: list[dict]) -> None:
        from faster_whisper.vad import SpeechTimestampsMap

        self._map = SpeechTimestampsMap(chunks, SAMPLE_RATE)

    def original(self, seconds: float, is_end: bool = False) -> float:
        return float(self._map.get_original_time(seconds, is_end=is_end))


def _speech_only(audio: np.ndarray) -> tuple[np.ndarray, _Timeline | None]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(audio, VadOptions(), sampling_rate=SAMPLE_RATE)
    if not chunks:
        return np.zeros(0, dtype=np.float32), None
    speech = np.concatenate([audio[chunk["start"] : chunk["end"]] for chunk in chunks])
    return speech, _Timeline(chunks)


def _segment(raw: dict[str, Any], timeline: _Timeline | None) -> Segment:
    def at(seconds: float, is_end: bool = False) -> float:
        return timeline.original(seconds, is_end) if timeline else float(seconds)

    return Segment(
        start=at(raw["start"]),
        end=at(raw["end"], is_end=True),
        text=raw["text"].strip(),
        avg_logprob=float(raw["avg_logprob"]),
        no_speech_prob=float(raw["no_speech_prob"]),
        words=[
            Word(
                start=at(w["start"]),
                end=at(w["end"], is_end=True),
                word=w["word"].strip(),
                probability=float(w["probability"]),
            )
            for w in raw.get("words", [])
        ],
        compression_ratio=float(raw["compression_ratio"]),
    )
