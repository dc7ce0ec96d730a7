"""Decompression-bomb audio, built in memory in milliseconds (tests and bench/intake_memory.py use it).

- `flac_bomb`: FLAC written by hand: frames of 65,535 constant (silent) samples, ~14 bytes each, so an
  hour at 8 kHz is ~6 KB. `stated=False` zeroes STREAMINFO's sample count ("unknown"), so only counting
  decoded samples can stop it.
- `lying_wav`: 2 KB of PCM whose header claims `rate` Hz (at 1 Hz: 16 minutes that resample to 16,000x).
- `opus_bomb`: WebM of 2-byte Opus packets (120 ms of packet-loss concealment each), muxed as a live
  MediaRecorder does, with no Duration in the header.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import av

FLAC_BLOCK = 65535


def flac_bomb(seconds: float, rate: int = 8000, stated: bool = True) -> bytes:
    total = int(seconds * rate)
    info = struct.pack(">HH", FLAC_BLOCK, FLAC_BLOCK) + b"\0\0\0\0\0\0"  # block sizes; frame sizes unknown
    packed = (rate << 44) | (0 << 41) | (15 << 36) | (total if stated else 0)  # rate, mono, 16-bit, samples
    info += packed.to_bytes(8, "big") + bytes(16)  # + MD5 unknown
    out = bytearray(b"fLaC" + bytes([0x80, 0, 0, len(info)]) + info)
    number, done = 0, 0
    while done < total:
        size = min(FLAC_BLOCK, total - done)
        out += _constant_frame(number, size)
        number, done = number + 1, done + size
    return bytes(out)


def _constant_frame(number: int, size: int) -> bytes:
    # sync + fixed blocking; block size "16 bits at end of header", rate from STREAMINFO; mono, 16-bit.
    header = bytearray([0xFF, 0xF8, 0x70, 0x08]) + _utf8_number(number) + struct.pack(">H", size - 1)
    header.append(_crc8(header))
    frame = header + bytes([0x00, 0x00, 0x00])  # CONSTANT subframe, value 0
    return bytes(frame + struct.pack(">H", _crc16(frame)))


def _utf8_number(value: int) -> bytes:
    if value < 0x80:
        return bytes([value])
    if value < 0x800:
        return bytes([0xC0 | (value >> 6), 0x80 | (value & 0x3F)])
    return bytes([0xE0 | (value >> 12), 0x80 | ((value >> 6) & 0x3F), 0x80 | (value & 0x3F)])


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def lying_wav(rate: int = 1, channels: int = 1, payload_bytes: int = 2000) -> bytes:
    pcm = bytes((i * 37) % 256 for i in range(payload_bytes))
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    align = 2 * channels
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * align, align, 16)
    return header + b"data" + struct.pack("<I", len(pcm)) + pcm


class _LiveSink(io.RawIOBase):
    """Write-only: the muxer cannot seek back to fill in Duration, as with a live MediaRecorder."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        self.data += chunk
        return len(chunk)


def opus_bomb(seconds: float) -> bytes:
    # TOC 0xFB: CELT fullband 20 ms frames, code 3; 0x06: six frames, all empty (lost) = 120 ms.
    packet_samples = 5760
    sink = _LiveSink()
    with av.open(sink, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        stream.time_base = Fraction(1, 48000)
        for index in range(int(seconds * 48000 / packet_samples)):
            packet = av.Packet(b"\xfb\x06")
            packet.stream = stream
            packet.pts = packet.dts = index * packet_samples
            packet.duration = packet_samples
            packet.time_base = stream.time_base
            out.mux(packet)
    return bytes(sink.data)
