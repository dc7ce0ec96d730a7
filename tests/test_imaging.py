"""annotate.imaging on real image bytes: what is accepted, what is measured, and why the rest is refused."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from annotate.imaging import ImageRejected, InspectedImage, configure_pillow, inspect_image
from tests.conftest import EXAMPLES

LIMIT = 89_478_485


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of the given size, built row by row so the huge image never exists in memory."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    parts = [compressor.compress(row * 1000) for _ in range(height // 1000)]
    parts.append(compressor.compress(row * (height % 1000)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    )


def quadrant_image(size: tuple[int, int] = (120, 80)) -> Image.Image:
    """White, with a red top-left quadrant: shows which way up a thumbnail is."""
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1] // 2))
    return image


def rejected(data: bytes, max_pixels: int = LIMIT, name: str = "x.jpg") -> str:
    with pytest.raises(ImageRejected) as caught:
        inspect_image(data, max_pixels, name=name)
    return caught.value.reason


def thumb(result: InspectedImage) -> Image.Image:
    image = Image.open(io.BytesIO(result.thumbnail))
    assert image.format == "JPEG"
    return image


@pytest.fixture
def pillow_limit() -> Iterator[None]:
    """configure_pillow changes a process-wide Pillow setting: put it back."""
    saved = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = saved


@pytest.mark.parametrize("path", sorted((EXAMPLES / "images").glob("*.jpg")), ids=lambda p: p.name)
def test_example_photos_are_accepted_with_hash_size_and_thumbnail(path: Path) -> None:
    data = path.read_bytes()
    result = inspect_image(data, LIMIT, name=path.name)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.format == "JPEG" and result.suffix == ".jpg"
    assert result.size_bytes == len(data)
    with Image.open(path) as original:
        stored = original.size
    expected = stored[::-1] if result.orientation in (5, 6, 7, 8) else stored
    assert (result.width, result.height) == expected
    small = thumb(result)
    assert max(small.size) == min(512, max(expected))
    assert (small.width >= small.height) == (expected[0] >= expected[1])


def test_exif_rotated_example_is_measured_and_thumbnailed_as_displayed() -> None:
    result = inspect_image((EXAMPLES / "images" / "chelsea_exif_rotated.jpg").read_bytes(), LIMIT)
    assert result.orientation == 6
    assert (result.width, result.height) == (451, 300)  # stored sideways as 300x451
    assert thumb(result).size == (451, 300)


@pytest.mark.parametrize(
    ("orientation", "transpose"),
    [
        (3, Image.Transpose.ROTATE_180),
        (6, Image.Transpose.ROTATE_90),
        (8, Image.Transpose.ROTATE_270),
        (2, Image.Transpose.FLIP_LEFT_RIGHT),
    ],
)
def test_thumbnail_undoes_exif_orientation(orientation: int, transpose: Image.Transpose) -> None:
    upright = quadrant_image()
    # Store the pixels the way a camera would, with the tag that tells viewers how to undo it.
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = upright.transpose(transpose)
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    result = inspect_image(data, LIMIT)
    assert result.orientation == orientation
    assert (result.width, result.height) == upright.size
    small = thumb(result).convert("RGB")
    assert small.size == upright.size
    red, white = small.getpixel((10, 10)), small.getpixel((small.width - 10, small.height - 10))
    assert red[0] > 200 and red[1] < 60, f"top-left should be red, got {red}"
    assert min(white) > 200, f"bottom-right should be white, got {white}"


def test_large_jpeg_is_thumbnailed_through_draft_mode_with_full_size_recorded() -> None:
    data = encode(quadrant_image((4000, 3000)), "JPEG", quality=80)
    result = inspect_image(data, LIMIT)
    assert (result.width, result.height) == (4000, 3000)
    assert thumb(result).size == (512, 384)


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("PNG", "RGB"),
        ("PNG", "P"),
        ("GIF", "P"),
        ("WEBP", "RGB"),
        ("BMP", "1"),
        ("JPEG", "CMYK"),
        ("JPEG", "L"),
    ],
)
def test_browser_formats_and_modes_are_accepted(fmt: str, mode: str) -> None:
    result = inspect_image(encode(Image.new(mode, (40, 30)), fmt), LIMIT)
    assert (result.format, result.mode, result.width, result.height) == (fmt, mode, 40, 30)
    assert thumb(result).mode in ("RGB", "L")


def test_transparency_goes_onto_white_in_the_thumbnail() -> None:
    result = inspect_image(encode(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), "PNG"), LIMIT)
    assert result.mode == "RGBA"
    assert thumb(result).convert("RGB").getpixel((5, 5)) == (255, 255, 255)


def test_16_bit_greyscale_is_scaled_not_clipped_in_the_thumbnail() -> None:
    result = inspect_image(encode(Image.new("I;16", (20, 20), 32768), "PNG"), LIMIT)
    assert result.mode.startswith("I;16")
    assert abs(thumb(result).getpixel((5, 5)) - 128) <= 2


def test_zero_bytes_is_an_empty_file() -> None:
    assert rejected(b"") == "empty file (0 bytes)"


def test_text_renamed_jpg_is_not_an_image() -> None:
    assert (
        rejected(b"just some notes, not a photo\n")
        == "not an image: Pillow cannot identify the file's format"
    )


def test_truncated_jpeg_is_rejected_even_though_draft_mode_decodes_small() -> None:
    data = encode(quadrant_image((1600, 1200)), "JPEG", quality=90)
    reason = rejected(data[: len(data) * 2 // 3])
    assert reason.startswith("corrupt or truncated image: ") and "truncated" in reason


def test_png_with_a_broken_checksum_is_corrupt() -> None:
    data = bytearray(encode(quadrant_image(), "PNG"))
    data[data.index(b"IDAT") + 10] ^= 0xFF
    assert rejected(bytes(data)).startswith("corrupt or truncated image: ")


def test_decompression_bomb_is_refused_from_the_header_alone() -> None:
    data = bomb_png(30_000, 30_000)
    assert len(data) < 200_000  # tiny on disk, 900 million pixels decoded
    assert rejected(data) == f"decompression bomb: 900000000 pixels exceeds the limit of {LIMIT}"


@pytest.mark.parametrize("times_limit", [1.5, 3])
def test_pillows_own_bomb_warning_and_error_become_the_same_reason(
    pillow_limit: None, times_limit: float
) -> None:
    # Pillow warns between 1x and 2x its limit and raises above 2x; configure_pillow makes that ours.
    limit = 10_000
    configure_pillow(limit)
    side = int((limit * times_limit) ** 0.5) + 1
    reason = rejected(encode(Image.new("L", (side, side)), "PNG"), max_pixels=limit)
    assert reason == f"decompression bomb: {side * side} pixels exceeds the limit of {limit}"


def test_float_image_is_an_unsupported_mode() -> None:
    reason = rejected(encode(Image.new("F", (8, 8)), "TIFF"), name="scan.tif")
    assert reason == "unsupported mode F (32-bit floating point): convert it to 8-bit RGB or greyscale"


def test_tiff_is_an_unsupported_format_browsers_cannot_show() -> None:
    reason = rejected(encode(Image.new("RGB", (8, 8)), "TIFF"), name="scan.tif")
    assert reason.startswith("unsupported format TIFF: browsers cannot show it")


def test_heic_is_named_when_pillow_has_no_plugin() -> None:
    reason = rejected(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", name="IMG_0001.HEIC")
    assert reason == "unsupported format HEIC: Pillow cannot read it; convert it to JPEG"
