"""Decode any audio container/codec to 16 kHz mono float32 with PyAV (bundled FFmpeg libraries).

No `ffmpeg` binary is needed: browsers upload webm/opus or mp4/aac, tests use wav/flac/ogg, and
PyAV reads them all in-process.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

SAMPLE_RATE = 16000


class AudioDecodeError(ValueError):
    """The input is not audio PyAV can decode (corrupt upload, no audio stream)."""


def decode_audio(source: str | Path | bytes | BinaryIO, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return the first audio stream of `source` as mono float32 samples in [-1, 1] at `sampling_rate`."""
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
            for frame in _resampled(_valid_frames(container.decode(audio=0)), resampler):
                chunks.append(frame.to_ndarray().reshape(-1))
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


def _resampled(frames: Iterator[av.AudioFrame], resampler: av.AudioResampler) -> Iterator[av.AudioFrame]:
    # The trailing None flushes the resampler's buffered samples.
    for frame in itertools.chain(frames, [None]):
        yield from resampler.resample(frame)
