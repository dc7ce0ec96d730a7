"""Decode any audio container/codec to 16 kHz mono float32 with PyAV (bundled FFmpeg libraries).

No `ffmpeg` binary is needed: browsers upload webm/opus or mp4/aac, tests use wav/flac/ogg, and
PyAV reads them all in-process. Decoding is bounded (see `audio_limits`): parameters and the stated
duration are checked first, and decoded samples are counted against a cap as they come out.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from transcribe.audio_limits import (
    AudioDecodeError,
    AudioLimits,
    AudioRefused,
    AudioTooLong,
    check_parameters,
    check_stated_duration,
    check_stream,
)

SAMPLE_RATE = 16000

__all__ = ["SAMPLE_RATE", "AudioDecodeError", "AudioLimits", "AudioRefused", "AudioTooLong", "decode_audio"]


def decode_audio(
    source: str | Path | bytes | BinaryIO,
    sampling_rate: int = SAMPLE_RATE,
    limits: AudioLimits | None = None,
) -> np.ndarray:
    """Return the first audio stream of `source` as mono float32 samples in [-1, 1] at `sampling_rate`.

    Raises AudioRefused (a subclass of AudioDecodeError) when a limit is hit, before the decoded audio
    can grow past `limits.max_seconds`.
    """
    limits = limits or AudioLimits()
    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    elif isinstance(source, Path):
        source = str(source)
    # Float output avoids the 16-bit round trip faster-whisper's decoder takes.
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sampling_rate)
    chunks: list[np.ndarray] = []
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioDecodeError("no audio stream in input")
            check_stream(container.streams.audio[0], limits)
            check_stated_duration(container, limits)
            cap = None if limits.max_seconds is None else int(limits.max_seconds * sampling_rate)
            total = 0
            frames = _checked(_valid_frames(container.decode(audio=0)), limits)
            for frame in _resampled(frames, resampler):
                chunk = frame.to_ndarray().reshape(-1)
                total += len(chunk)
                if cap is not None and total > cap:
                    raise AudioTooLong(total / sampling_rate, float(limits.max_seconds or 0))
                chunks.append(chunk)
    except av.error.FFmpegError as exc:
        raise AudioDecodeError(f"cannot decode audio: {exc}") from exc
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)


def duration_seconds(audio: np.ndarray, sampling_rate: int = SAMPLE_RATE) -> float:
    return len(audio) / float(sampling_rate)


def _valid_frames(frames: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    # A truncated browser upload often ends in one bad packet; keep what decodes.
    iterator = iter(frames)
    while True:
        try:
            frame = next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue
        frame.pts = None  # timestamps from MediaRecorder are often non-monotonic
        yield frame


def _checked(frames: Iterator[av.AudioFrame], limits: AudioLimits) -> Iterator[av.AudioFrame]:
    # Parameters may change mid-stream (chained Ogg, a WAV header that lied): check every frame.
    for frame in frames:
        check_parameters(frame.sample_rate, len(frame.layout.channels), frame.samples, limits)
        yield frame


def _resampled(frames: Iterator[av.AudioFrame], resampler: av.AudioResampler) -> Iterator[av.AudioFrame]:
    # The trailing None flushes the resampler's buffered samples.
    for frame in itertools.chain(frames, [None]):
        yield from resampler.resample(frame)
