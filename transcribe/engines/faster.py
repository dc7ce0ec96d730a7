"""faster-whisper (CTranslate2): the default engine. int8 on CPU, float16 on GPU.

On a GPU, recordings go through faster-whisper's `BatchedInferencePipeline`, which decodes the VAD
chunks of a recording as one batch (about 3.7x the plain decoder there); on CPU the plain decoder is
used unless `batched=True` is asked for.
"""

from __future__ import annotations

import time

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
from transcribe.model_paths import resolve_ct2_model


def resolve_device(device: str) -> str:
    """ "auto" picks CUDA when CTranslate2 sees a GPU."""
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(
        self,
        model: str = "tiny.en",
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        beam_size: int = 5,
        batch_size: int = 8,
        vad_filter: bool = True,
        language: str | None = None,
        word_timestamps: bool = True,
        batched: bool | None = None,
    ) -> None:
        import ctranslate2
        import faster_whisper

        self.model_name = model
        self.device = resolve_device(device)
        self.compute_type = resolve_compute_type(compute_type, self.device)
        self.cpu_threads = resolve_threads(cpu_threads)
        self.beam_size = beam_size
        self.batch_size = batch_size
        self.vad_filter = vad_filter
        self.language = default_language(model, language)
        self.word_timestamps = word_timestamps
        self.engine_version = f"{faster_whisper.__version__} (ctranslate2 {ctranslate2.__version__})"
        # Loaded once: reloading per recording is slow and leaks memory (faster-whisper 660, 1055).
        self.model = faster_whisper.WhisperModel(
            resolve_ct2_model(model),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
        )
        self.batched = (self.device == "cuda") if batched is None else batched
        self._pipeline = faster_whisper.BatchedInferencePipeline(self.model) if self.batched else None

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> TranscriptResult:
        audio = as_audio_array(audio)
        started = time.perf_counter()
        options = {
            "language": language or self.language,
            "beam_size": self.beam_size,
            "word_timestamps": self.word_timestamps,
            "vad_filter": self.vad_filter,
        }
        if self._pipeline is not None:
            # The pipeline cuts audio at VAD boundaries; without VAD it refuses audio over 30 s.
            options["vad_filter"] = True
            segments, info = self._pipeline.transcribe(audio, batch_size=self.batch_size, **options)
        else:
            segments, info = self.model.transcribe(audio, **options)
        # `segments` is a lazy generator: decoding happens while it is consumed.
        converted = [_segment(segment) for segment in segments]
        return build_result(
            converted,
            language=info.language,
            engine=self.name,
            model=self.model_name,
            engine_version=self.engine_version,
            audio_seconds=len(audio) / SAMPLE_RATE,
            processing_seconds=time.perf_counter() - started,
            language_probability=round(float(info.language_probability), 4),
        )

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The language most likely spoken in the first 30 s, and its probability (multilingual models)."""
        language, probability, _ = self.model.detect_language(as_audio_array(audio))
        return language, round(float(probability), 4)

    def transcribe_batch(
        self, audios: list[np.ndarray], language: str | None = None
    ) -> list[TranscriptResult]:
        # One loaded model; on GPU each recording's chunks are already decoded as a batch.
        return [self.transcribe(audio, language) for audio in audios]


def _segment(segment) -> Segment:
    return Segment(
        start=float(segment.start),
        end=float(segment.end),
        text=segment.text.strip(),
        avg_logprob=float(segment.avg_logprob),
        no_speech_prob=float(segment.no_speech_prob),
        words=[
            Word(float(w.start), float(w.end), w.word.strip(), float(w.probability))
            for w in segment.words or []
        ],
        compression_ratio=float(segment.compression_ratio),
    )
