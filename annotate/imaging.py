"""Pillow, in one place: check that bytes are an image people can look at, measure it, and thumbnail it.

`inspect_image()` is the whole job for one file. It raises `ImageRejected` with a reason written for the
person reading the ingest summary; every other Pillow error becomes such a reason, so a bad file can never
abort an ingest run.

EXIF orientation: the original bytes are kept untouched (they are the proof of what was annotated, and
their sha256 is what deduplicates a re-ingest of the same file). Width and height are recorded *after*
the EXIF transpose, i.e. as people see the image (browsers apply the tag when showing an <img>), and the
thumbnail is transposed.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Formats a browser shows in an <img>, which is how annotators see the image. Pillow names a JPEG with
# extra frames (phone cameras) MPO; it is stored and served as JPEG.
FORMAT_SUFFIX = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}
# 8 bits per channel, plus 16-bit greyscale PNG (scaled down for the thumbnail). Float and 32-bit integer
# images (scientific TIFFs) have no agreed way to be shown, so they are refused rather than guessed at.
SUPPORTED_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"}
    | {"I;16", "I;16B", "I;16L"}
)
MODE_NAMES = {"F": "32-bit floating point", "I": "32-bit integer", "LAB": "CIE L*a*b*", "HSV": "HSV"}
# Suffixes that Pillow cannot open without a plugin; named so the reason says what to do.
PLUGIN_FORMATS = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".jxl": "JPEG XL"}

THUMBNAIL_SIZE = 512
THUMBNAIL_QUALITY = 82
EXIF_ORIENTATION = 0x0112


class ImageRejected(ValueError):
    """The file is not accepted; `reason` says why, in words for the ingest summary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InspectedImage:
    sha256: str
    size_bytes: int
    width: int  # after EXIF orientation
    height: int
    format: str  # JPEG, PNG, GIF, WEBP or BMP
    mode: str
    suffix: str  # for the blob key of the original, e.g. ".jpg"
    orientation: int  # EXIF orientation tag, 1 when absent
    thumbnail: bytes  # JPEG, long side THUMBNAIL_SIZE at most, transposed


def configure_pillow(max_pixels: int) -> None:
    """Make Pillow's own decompression-bomb check use our limit (it warns above it, raises above twice it).

    Process-wide on purpose: every image this process opens should obey the configured limit.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is a rejection, not a grey half-image


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bomb_reason(pixels: int, max_pixels: int) -> str:
    return f"decompression bomb: {pixels} pixels exceeds the limit of {max_pixels}"


def inspect_image(
    data: bytes,
    max_pixels: int,
    *,
    name: str = "",
    sha256: str | None = None,
    thumbnail_size: int = THUMBNAIL_SIZE,
) -> InspectedImage:
    """Verify, measure and thumbnail one image held in memory. Raises ImageRejected.

    `name` (a file name or URL) only improves the reason for formats Pillow has no plugin for.
    """
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    digest = sha256 or sha256_hex(data)
    with warnings.catch_warnings():
        # Pillow warns between 1x and 2x MAX_IMAGE_PIXELS and raises above; both are a rejection here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _inspect(data, max_pixels, name, digest, thumbnail_size)
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(bomb_reason(_pixels_in(str(exc)), max_pixels)) from None
        except UnidentifiedImageError:
            raise ImageRejected(_unidentified_reason(name)) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
            # Pillow reports truncation and corruption with these (SyntaxError for bad headers).
            raise ImageRejected(f"corrupt or truncated image: {_short(exc)}") from None
        except MemoryError:
            raise ImageRejected("too large to decode in memory") from None
        except Exception as exc:
            # Pillow's format plugins can raise almost anything on a malformed file (TypeError,
            # KeyError, ZeroDivisionError...); a bad file must never stop an ingest run.
            raise ImageRejected(f"cannot decode: {type(exc).__name__}: {_short(exc)}") from None


def _inspect(data: bytes, max_pixels: int, name: str, digest: str, thumbnail_size: int) -> InspectedImage:
    with Image.open(io.BytesIO(data)) as probe:
        fmt = probe.format or "?"
        width, height = probe.size
        if width * height > max_pixels:
            raise ImageRejected(bomb_reason(width * height, max_pixels))
        if probe.mode not in SUPPORTED_MODES:
            described = MODE_NAMES.get(probe.mode, probe.mode)
            raise ImageRejected(
                f"unsupported mode {probe.mode} ({described}): convert it to 8-bit RGB or greyscale"
            )
        if fmt not in FORMAT_SUFFIX:
            accepted = ", ".join(sorted({f for f in FORMAT_SUFFIX if f != "MPO"}))
            raise ImageRejected(f"unsupported format {fmt}: browsers cannot show it (accepted: {accepted})")
        mode = probe.mode
        # verify() checks structure and checksums (PNG CRCs) without decoding; the image is unusable after.
        probe.verify()

    with Image.open(io.BytesIO(data)) as image:
        orientation = _orientation(image)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        if image.format in ("JPEG", "MPO"):
            # DCT scaling: libjpeg decodes straight to 1/2, 1/4 or 1/8 size, several times faster than a
            # full decode. It still reads every byte, so truncation is still caught.
            long_side = max(image.size)
            scale = thumbnail_size / long_side
            image.draft(None, (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))))
        image.load()
        thumb = _thumbnail(image, thumbnail_size)

    return InspectedImage(
        sha256=digest,
        size_bytes=len(data),
        width=width,
        height=height,
        format="JPEG" if fmt == "MPO" else fmt,
        mode=mode,
        suffix=FORMAT_SUFFIX[fmt],
        orientation=orientation,
        thumbnail=thumb,
    )


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block is not worth rejecting a viewable image for
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _thumbnail(image: Image.Image, size: int) -> bytes:
    image = ImageOps.exif_transpose(image) or image
    image = _displayable(image)
    # Bilinear is antialiased when shrinking in Pillow and costs half of bicubic; the thumbnail is shown
    # small, where the two are hard to tell apart. Huffman optimisation would save 5% of a few kB.
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


def _displayable(image: Image.Image) -> Image.Image:
    """RGB or L for a JPEG thumbnail: transparency goes onto white, 16-bit grey is scaled to 8 bits."""
    if image.mode.startswith("I;16"):
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("L", "RGB"):
        return image
    transparent = image.mode == "P" and "transparency" in image.info
    if transparent or image.mode in ("PA", "LA", "La", "RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _unidentified_reason(name: str) -> str:
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    plugin = PLUGIN_FORMATS.get(f".{suffix}")
    if plugin:
        return f"unsupported format {plugin}: Pillow cannot read it; convert it to JPEG"
    return "not an image: Pillow cannot identify the file's format"


def _pixels_in(message: str) -> int:
    match = re.search(r"\((\d+) pixels\)", message)
    return int(match.group(1)) if match else 0


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
