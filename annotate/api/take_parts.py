"""A take uploaded as multipart/form-data: the `pointing` part read whole (it is capped and small),
then the `audio` part passed on chunk by chunk as it arrives, never held in memory.

python-multipart's streaming parser (a FastAPI dependency) does the parsing; this module only holds
the order of the parts and the byte limits. Any other shape (parts missing, in another order, extra,
or a body that ends early) is refused as `upload_malformed`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from annotate.errors import VoicecapError
from annotate.services.pointing import PointingLimits, too_large

MULTIPART = "multipart/form-data"
# Room for the boundaries and the parts' headers around the two bodies.
ENVELOPE_BYTES = 64 * 1024


class UploadMalformed(VoicecapError):
    code = "upload_malformed"
    status = 422


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type, or UploadMalformed."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != MULTIPART.encode() or not boundary:
        raise UploadMalformed("A multipart upload needs Content-Type multipart/form-data with a boundary.")
    return boundary


class TakeParts:
    """Reads `pointing` then `audio` from the body's chunks.

    `head()` pulls chunks until the audio part's headers are in and returns the pointing bytes and the
    audio's Content-Type; `audio()` then yields the audio bytes as they arrive and checks that the body
    ends right after them."""

    def __init__(
        self, chunks: Iterator[bytes], boundary: bytes, limits: PointingLimits, max_body_bytes: int
    ) -> None:
        self._chunks = chunks
        self._limits = limits
        self._max_body = max_body_bytes
        self._read = 0
        self._parts = 0  # parts begun
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._pointing = bytearray()
        self._audio_type: str | None = None
        self._audio: deque[bytes] = deque()
        self._audio_done = False
        self._ended = False
        self._problem: VoicecapError | None = None
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def head(self) -> tuple[bytes, str]:
        while self._audio_type is None:
            chunk = next(self._chunks, None)
            if chunk is None:
                raise UploadMalformed(
                    "The upload ended before its audio part: send a `pointing` part, then an `audio` part."
                )
            self._feed(chunk)
        return bytes(self._pointing), self._audio_type

    def audio(self) -> Iterator[bytes]:
        while True:
            while self._audio:
                yield self._audio.popleft()
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._feed(chunk)
        try:
            self._parser.finalize()
        except MultipartParseError as exc:
            raise UploadMalformed(f"The multipart body is malformed ({exc}).") from None
        if not (self._audio_done and self._ended):
            raise UploadMalformed("The upload ended in the middle of its audio part.")

    def _feed(self, chunk: bytes) -> None:
        self._read += len(chunk)
        if self._read > self._max_body:
            raise VoicecapError(
                f"The upload is larger than the limit of {self._max_body / 1024 / 1024:.3g} MB.",
                code="audio_too_large",
                status=413,
            )
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise UploadMalformed(f"The multipart body is malformed ({exc}).") from None
        if self._problem is not None:
            raise self._problem

    # parser callbacks: they record, _feed raises (an exception inside the parser would leave it
    # half-way through a chunk).

    def _part_begin(self) -> None:
        self._parts += 1
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        expected = {1: "pointing", 2: "audio"}.get(self._parts)
        if name != expected:
            self._fail(
                f"part {self._parts} is {name or 'unnamed'!r}; send exactly two parts, `pointing` (JSON) "
                "first, then `audio`"
            )
        elif name == "audio":
            self._audio_type = self._headers.get(b"content-type", b"").decode("latin-1")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._problem is not None:
            return
        if self._parts == 1:
            self._pointing += data[start:end]
            if len(self._pointing) > self._limits.max_bytes:
                self._problem = too_large(self._limits)
        elif self._parts == 2:
            self._audio.append(data[start:end])

    def _part_end(self) -> None:
        if self._parts == 2:
            self._audio_done = True

    def _end(self) -> None:
        self._ended = True

    def _fail(self, detail: str) -> None:
        if self._problem is None:
            self._problem = UploadMalformed(f"The multipart upload is malformed: {detail}.")
