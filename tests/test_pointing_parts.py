"""The multipart take reader on its own: the audio comes out byte for byte however the body is cut
into chunks, the pointing part is capped while it arrives, and the audio is passed on as it comes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from annotate.api.take_parts import TakeParts, UploadMalformed, boundary_of
from annotate.errors import VoicecapError
from annotate.services.pointing import PointingLimits

LIMITS = PointingLimits(max_points=10, max_trace_samples=100, max_bytes=1024, time_tolerance_seconds=1.0)
BOUNDARY = b"----voicecap7MA4YWxkTrZu0gW"
POINTING = b'{"version": 1, "traces": [[[0.1, 0.2, 0.3]]]}'


def body(pointing: bytes = POINTING, audio: bytes = b"", audio_type: bytes = b"audio/webm") -> bytes:
    return (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="pointing"; filename="p.json"\r\n'
        b"Content-Type: application/json\r\n\r\n" + pointing + b"\r\n"
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="audio"; filename="take.webm"\r\n'
        b"Content-Type: " + audio_type + b"\r\n\r\n" + audio + b"\r\n--" + BOUNDARY + b"--\r\n"
    )


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 7, 64, 4096, 1 << 20])
def test_the_audio_comes_out_whole_however_the_body_is_chunked(size: int) -> None:
    # Random bytes hold CR, LF and dashes, so boundary-like runs straddle chunk edges.
    audio = os.urandom(50_000) + b"\r\n--" + BOUNDARY[:-1] + os.urandom(100)
    parts = TakeParts(chunked(body(audio=audio), size), BOUNDARY, LIMITS, 10_000_000)
    pointing, audio_type = parts.head()
    assert pointing == POINTING and audio_type == "audio/webm"
    assert b"".join(parts.audio()) == audio


def test_the_audio_is_passed_on_as_it_arrives_not_after_the_body() -> None:
    audio = os.urandom(200_000)
    pulled = 0

    def source() -> Iterator[bytes]:
        nonlocal pulled
        for chunk in chunked(body(audio=audio), 16_384):
            pulled += 1
            yield chunk

    parts = TakeParts(source(), BOUNDARY, LIMITS, 10_000_000)
    parts.head()
    first = next(parts.audio())
    assert first and pulled <= 2  # the first audio bytes came before the rest of the body was read


def test_the_pointing_part_is_capped_while_it_arrives() -> None:
    def endless() -> Iterator[bytes]:
        yield b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="pointing"\r\n\r\n'
        while True:
            yield b"[" * 512

    with pytest.raises(VoicecapError) as refused:
        TakeParts(endless(), BOUNDARY, LIMITS, 10_000_000).head()
    assert refused.value.code == "pointing_too_large" and refused.value.status == 413


def test_a_body_over_the_limit_is_stopped() -> None:
    parts = TakeParts(chunked(body(audio=b"x" * 5000), 512), BOUNDARY, LIMITS, 4000)
    parts.head()
    with pytest.raises(VoicecapError) as refused:
        b"".join(parts.audio())
    assert refused.value.code == "audio_too_large" and refused.value.status == 413


@pytest.mark.parametrize(
    "data",
    [
        body().replace(b'name="pointing"', b'name="notes"'),
        body().replace(b'name="audio"', b'name="sound"'),
        body()[:-8],  # ends before the closing boundary
        body()[:40],  # ends inside the first part
        # a third part after the audio
        body().replace(b"--\r\n", b"\r\n")
        + b'Content-Disposition: form-data; name="x"\r\n\r\nmore\r\n--'
        + BOUNDARY
        + b"--\r\n",
    ],
)
def test_other_shapes_are_malformed(data: bytes) -> None:
    with pytest.raises(UploadMalformed):
        parts = TakeParts(chunked(data, 100), BOUNDARY, LIMITS, 10_000_000)
        parts.head()
        b"".join(parts.audio())


def test_a_content_type_without_a_boundary_is_malformed() -> None:
    assert boundary_of(f"multipart/form-data; boundary={BOUNDARY.decode()}") == BOUNDARY
    with pytest.raises(UploadMalformed):
        boundary_of("multipart/form-data")
