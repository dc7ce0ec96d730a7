"""Limits that keep decoding bounded whatever an upload claims to be (decompression bombs).

A few KB of FLAC or Opus can decode to hours of audio, and a WAV header can claim 1 Hz so that the
resampler multiplies every byte by 16,000. `decode_audio` checks the stream's parameters and the
container's stated duration before decoding, then counts samples as they come out and stops at the cap,
so the memory one decode can take is set by these limits, not by the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

# Telephony is 8 kHz and studio gear records 384 kHz; anything outside is a crafted file.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 8
# FLAC's largest block is 65,535 samples; a frame far past that is what a bomb needs to inflate in one step.
MAX_FRAME_SAMPLES = 1 << 17


class AudioDecodeError(ValueError):
    """The input is not audio PyAV can decode (corrupt upload, no audio stream)."""


class AudioRefused(AudioDecodeError):
    """Decodable in principle, but refused by a limit; `code` names which (a stable API error code)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class AudioTooLong(AudioRefused):
    def __init__(self, seconds: float, max_seconds: float) -> None:
        super().__init__(
            f"the audio is longer than {max_seconds:g} s (at least {seconds:.1f} s)", "audio_too_long"
        )
        self.seconds = seconds
        self.max_seconds = max_seconds


@dataclass(frozen=True)
class AudioLimits:
    """`max_seconds` None means no duration cap (the parameter checks always apply)."""

    max_seconds: float | None = None
    min_sample_rate: int = MIN_SAMPLE_RATE
    max_sample_rate: int = MAX_SAMPLE_RATE
    max_channels: int = MAX_CHANNELS
    max_frame_samples: int = MAX_FRAME_SAMPLES


def check_stream(stream: av.audio.stream.AudioStream, limits: AudioLimits) -> None:
    """Refuse absurd parameters as the container states them, before anything is decoded."""
    context = stream.codec_context
    check_parameters(context.sample_rate or stream.rate or 0, context.channels or 0, 0, limits)


def check_parameters(sample_rate: int, channels: int, frame_samples: int, limits: AudioLimits) -> None:
    low, high = limits.min_sample_rate, limits.max_sample_rate
    if sample_rate and not low <= sample_rate <= high:
        raise AudioRefused(
            f"a sample rate of {sample_rate} Hz is outside {low}-{high} Hz",
            "audio_bad_sample_rate",
        )
    if channels > limits.max_channels:
        raise AudioRefused(
            f"{channels} channels is more than the {limits.max_channels} accepted", "audio_bad_channels"
        )
    if frame_samples > limits.max_frame_samples:
        raise AudioRefused(
            f"a frame of {frame_samples} samples is larger than the {limits.max_frame_samples} accepted",
            "audio_bad_frame_size",
        )


def check_stated_duration(container: av.container.InputContainer, limits: AudioLimits) -> None:
    """The container's own duration (FLAC STREAMINFO, WAV data size, a WebM Duration): a cheap early no.
    It can lie or be absent, so the decode loop counts samples too."""
    if limits.max_seconds is None:
        return
    stream = container.streams.audio[0]
    seconds = 0.0
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    if seconds > limits.max_seconds:
        raise AudioTooLong(seconds, limits.max_seconds)
