"""Export rows: an ImageRecord becomes one JSON-ready row (a superset of PixMo-Cap's), then a JSONL line.

Shared by the single-process export, the part builders of a parallel one and the download endpoint.
Nothing here imports pyarrow: a JSONL export never pays for it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine

from annotate.errors import InvalidInput
from annotate.services.export.fields import CAPTIONS, RECORDINGS, REVIEWS, _loads
from annotate.services.export.pointing import (
    PIXMO_POINTS,
    strokes_json,
    take_points,
    timed_caption,
    trace_strokes,
)
from annotate.services.export.records import ImageRecord, WindowPointing, iter_records
from annotate.services.export.selection import ExportFilter, SplitSpec
from annotate.services.media_links import MediaLinks
from db.blobstore import Blobs
from db.files import atomic_write

IMAGE_EXTENSIONS = {
    "jpeg": ".jpg",
    "png": ".png",
    "webp": ".webp",
    "gif": ".gif",
    "bmp": ".bmp",
    "tiff": ".tif",
}
caption_json = CAPTIONS.to_json
recording_json = RECORDINGS.to_json
review_json = REVIEWS.to_json


class RowBuilder:
    """Turns an ImageRecord into an export row; with media, copies the files beside the rows."""

    def __init__(
        self,
        project: str,
        blobs: Blobs,
        split: SplitSpec,
        public_base_url: str = "",
        media_dir: Path | None = None,
        links: MediaLinks | None = None,
        pixmo_urls: bool = False,
        raw_json: bool = False,
    ) -> None:
        self.project = project
        # Every consumer of the rows writes them with orjson (JSONL, Localized Narratives): the stored
        # pointing JSON goes into the rows as orjson fragments, never parsed. Else it is parsed (Parquet,
        # PixMo-Points read its values).
        self.raw_json = raw_json and RAW_JSON
        # Signed links (no session needed) to this app's copy of an image, when a public base URL is set.
        self.links = links
        # PixMo-Cap's image_url names every image: the export's copy with media, else a signed link.
        self.pixmo_urls = pixmo_urls
        self.blobs = blobs
        self.split = split
        self.public_base_url = public_base_url.rstrip("/")
        self.media_dir = media_dir
        # Computed once: BlobStore.path() resolves symlinks per call, which dominated large exports.
        self.blob_root = blobs.url
        self.media_lines: BinaryIO | None = None
        self.media_files = 0
        self.missing_media: list[str] = []

    def image_url(self, record: ImageRecord) -> str | None:
        if self.pixmo_urls:
            if self.media_dir is not None:
                return self.image_path(record)
            if self.links is not None:
                return self.links.image(record.id, self.image_suffix(record))
        if record.source.startswith(("http://", "https://")):
            return record.source
        if self.links is not None:
            return self.links.image(record.id, self.image_suffix(record))
        if self.public_base_url:
            return f"{self.public_base_url}/api/images/{record.id}/original"
        return None

    def image_path(self, record: ImageRecord) -> str:
        """Relative to the export directory with media, else where the bytes are on this machine."""
        if self.media_dir is None:
            return self.local_path(record.blob_key)
        sha = record.sha256
        return self._copy(record.blob_key, f"media/images/{sha[:2]}/{sha}{self.image_suffix(record)}")

    @staticmethod
    def image_suffix(record: ImageRecord) -> str:
        return IMAGE_EXTENSIONS.get(record.format.lower(), Path(record.blob_key).suffix or ".bin")

    def audio_path(self, key: str) -> str:
        if self.media_dir is None:
            return self.local_path(key)
        name = Path(key).name
        return self._copy(key, f"media/audio/{name[:2]}/{name}")

    def local_path(self, key: str) -> str:
        # The cheap substring test first: this runs for every image and every recording.
        if key.startswith("/") or (".." in key and ".." in key.split("/")):
            raise InvalidInput(f"bad blob key {key!r}")
        return f"{self.blob_root}/{key}"

    def _copy(self, key: str, relative: str) -> str:
        assert self.media_dir is not None
        target = self.media_dir.parent / relative
        if not target.exists():
            try:
                blob = self.blobs.open(key)
            except FileNotFoundError:
                if len(self.missing_media) < 100:
                    self.missing_media.append(key)
                return relative
            with blob, atomic_write(target, "wb") as copy:
                shutil.copyfileobj(blob, copy, 1024 * 1024)
            if self.media_lines is not None:
                # Blob keys are the sha256 of the bytes, so the media list costs no re-hashing.
                digest = Path(key).name.split(".", 1)[0]
                self.media_lines.write(f"{digest}  {relative}\n".encode())
            self.media_files += 1
        return relative

    def row(self, record: ImageRecord) -> dict[str, Any]:
        """The row's fields in fields.ROW's order; the nested records' JSON comes from their tables."""
        chosen = record.chosen
        chosen_id = chosen.id if chosen is not None else None
        review = max(record.reviews, key=lambda r: r.created_at) if record.reviews else None
        recordings = record.recordings
        pointing = record.pointing
        groups: Any = []
        text_lines: list[str] = []  # points_text's lines, made in the same pass as the groups
        if pointing.rendered:
            parts = []  # each take's groups: its stored JSON list without the brackets
            for r in recordings:
                found = pointing.rendered.get(r.id)
                if found is not None:
                    if len(found[0]) > 2:
                        parts.append(found[0][1:-1])
                    if found[1] is not None:
                        text_lines.append(found[1])
            if parts:
                joined = "[" + ",".join(parts) + "]"
                groups = Fragment(joined) if self.raw_json else _loads(joined)
        elif pointing.point_sets:
            for r in recordings:
                current = pointing.point_sets.get(r.id)
                if current is not None:
                    groups.extend(take_points(current[0], current[1], r.id, text_lines))
        return {
            # PixMo-Cap's fields first.
            "image_url": self.image_url(record),
            "caption": chosen.text if chosen else None,
            "transcripts": [r.transcript for r in recordings],
            "image_path": self.image_path(record),
            "image_id": record.id,
            "sha256": record.sha256,
            "width": record.width,
            "height": record.height,
            "split": self.split.split_of(record.sha256),
            "project": self.project,
            "caption_id": chosen_id,
            "captions": [caption_json(c, chosen=c.id == chosen_id) for c in record.captions],
            "recordings": [
                recording_json(
                    r,
                    traces=self.traces(pointing, r.id),
                    timed_caption=timed_caption(pointing.words[r.id]) if r.id in pointing.words else None,
                    audio_path=self.audio_path(r.original_key),
                )
                for r in recordings
            ],
            "review": review_json(review) if review else None,
            "points": groups,
            "points_text": "\n".join(text_lines) if text_lines else None,
        }

    def traces(self, pointing: WindowPointing, recording_id: int) -> Any:
        """A take's strokes of {x, y, t}: from the stored text when read for an export, rewritten into a
        fragment without parsing where it can be (pointing.strokes_json), else as objects."""
        if not pointing.trace_texts:
            return trace_strokes(pointing.traces.get(recording_id))
        stored = pointing.trace_texts.get(recording_id)
        if stored is None:
            return []
        if self.raw_json:
            return Fragment(strokes_json(stored))
        return trace_strokes(_loads(stored))


try:  # orjson encodes rows several times faster; the output is the same compact UTF-8 JSON.
    import orjson

    def encode_line(row: dict[str, Any]) -> bytes:
        return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)

except ImportError:  # pragma: no cover - orjson is optional

    def encode_line(row: dict[str, Any]) -> bytes:
        return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


try:  # JSON text written into a row as it is (orjson 3.9+)
    from orjson import Fragment

    RAW_JSON = True
except ImportError:  # pragma: no cover - orjson is optional
    Fragment = None  # type: ignore[assignment,misc]
    RAW_JSON = False

# The formats whose writers read a row's values rather than encode it with orjson.
PARSING_FORMATS = frozenset({"parquet", PIXMO_POINTS})


def iter_rows(
    engine: Engine,
    builder: RowBuilder,
    flt: ExportFilter,
    window: int = 1000,
    after_id: int = 0,
    upto_id: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Export rows, one window at a time (rows without a chosen caption are kept only for `all`)."""
    for records in iter_records(engine, flt, window, after_id, upto_id, rendered=True):
        rows = [builder.row(r) for r in records if r.chosen is not None or flt.state == "all"]
        if rows:
            yield rows


def stream_jsonl(
    engine: Engine, builder: RowBuilder, flt: ExportFilter, window: int = 1000
) -> Iterator[bytes]:
    """All splits as one JSONL stream (each row carries its `split`), in chunks of about a window."""
    for rows in iter_rows(engine, builder, flt, window):
        yield b"".join(encode_line(row) for row in rows)


TOTALS = ("images", "with_caption", "recordings", "transcripts", "captions", "reviewed")


def tally(row: dict[str, Any], counts: dict[str, int], totals: dict[str, int]) -> None:
    counts[row["split"]] += 1
    totals["images"] += 1
    totals["with_caption"] += row["caption"] is not None
    totals["recordings"] += len(row["recordings"])
    totals["transcripts"] += len(row["transcripts"])
    totals["captions"] += len(row["captions"])
    totals["reviewed"] += row["review"] is not None


def write_rows(
    rows: list[dict[str, Any]],
    jsonl: dict[str, Any],
    parquet: dict[str, Any],
    counts: dict[str, int],
    totals: dict[str, int],
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Count a window's rows and write each to its split's JSONL file and/or Parquet writer (either may
    be empty: that format was not asked for), shaped by the export's profile (None: the full row)."""
    for row in rows:
        tally(row, counts, totals)
        out = row if shape is None else shape(row)
        if jsonl:
            jsonl[row["split"]].write(encode_line(out))
        if parquet:
            parquet[row["split"]].add(out)
