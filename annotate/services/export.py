"""Dataset export: JSONL (a superset of PixMo-Cap's rows), Parquet from the same rows, and a manifest.

Every file is written under a `.tmp` name and renamed only once it is complete and fsynced, and the
manifest (counts, filters, code version, a sha256 of every file) is written last: a crash at any point
leaves no half file under a finished name. An existing manifest is removed before anything is written,
so an old manifest can never describe new files.

Loading: `datasets.load_dataset("json", data_files={"train": "train.jsonl", ...})` or pandas
`read_json(..., lines=True)`. datasets infers JSON types from the first 10 MB of a file and cannot widen
them later: a field null (or an empty list) in every one of the first ~3,000 rows and set further on
fails to load. Top-level fields keep one type, but nested provenance can do this in a very large
export; the Parquet files (`--format parquet`) carry a fixed schema and always load.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from annotate.errors import Conflict, InvalidInput
from annotate.services.export_rows import (
    SPLITS,
    ExportFilter,
    ImageRecord,
    SplitSpec,
    count_images,
    iter_records,
    range_bounds,
)
from db.blobstore import BlobStore
from db.models import Project
from db.session import is_sqlite

FORMATS: tuple[str, ...] = ("jsonl", "parquet")
MANIFEST = "manifest.json"
MEDIA_LIST = "media.sha256"
PARALLEL_MIN_ROWS = 50_000
PARQUET_BATCH = 5000  # rows buffered per split before a Parquet row group is written
IMAGE_EXTENSIONS = {
    "jpeg": ".jpg",
    "png": ".png",
    "webp": ".webp",
    "gif": ".gif",
    "bmp": ".bmp",
    "tiff": ".tif",
}

Progress = Callable[[int], None]

# The Parquet files carry this schema, so their types never depend on which rows come first.
_SEGMENT = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("text", pa.string())])
_CAPTION = pa.struct(
    [
        ("id", pa.int64()),
        ("kind", pa.string()),
        ("status", pa.string()),
        ("chosen", pa.bool_()),
        ("text", pa.string()),
        ("cleaner", pa.string()),
        ("model", pa.string()),
        ("prompt_version", pa.string()),
        ("recording_id", pa.int64()),
        ("transcript_id", pa.int64()),
        ("parent_id", pa.int64()),
        ("faithfulness", pa.float64()),
        ("flagged", pa.bool_()),
        ("flags", pa.list_(pa.string())),
        ("created_at", pa.string()),
    ]
)
_RECORDING = pa.struct(
    [
        ("id", pa.int64()),
        ("annotator", pa.string()),
        ("seconds", pa.float64()),
        ("language", pa.string()),
        ("transcript", pa.string()),
        ("segments", pa.list_(_SEGMENT)),
        ("engine", pa.string()),
        ("model", pa.string()),
        ("audio_path", pa.string()),
        ("content_type", pa.string()),
        ("created_at", pa.string()),
    ]
)
_REVIEW = pa.struct(
    [
        ("caption_id", pa.int64()),
        ("decision", pa.string()),
        ("reviewer", pa.string()),
        ("reason", pa.string()),
        ("source", pa.string()),
        ("created_at", pa.string()),
    ]
)
ROW_SCHEMA = pa.schema(
    [
        ("image_url", pa.string()),
        ("caption", pa.string()),
        ("transcripts", pa.list_(pa.string())),
        ("image_path", pa.string()),
        ("image_id", pa.int64()),
        ("sha256", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("split", pa.string()),
        ("project", pa.string()),
        ("caption_id", pa.int64()),
        ("captions", pa.list_(_CAPTION)),
        ("recordings", pa.list_(_RECORDING)),
        ("review", _REVIEW),
    ]
)


@dataclass
class ExportOptions:
    filter: ExportFilter
    split: SplitSpec = field(default_factory=SplitSpec)
    formats: tuple[str, ...] = ("jsonl",)
    with_media: bool = False
    overwrite: bool = False
    window: int = 1000
    public_base_url: str = ""
    # Processes that build rows: 0 = one per core (at most 4) for exports of PARALLEL_MIN_ROWS or more.
    # Each writes its id range to part files the main process then appends in order, so the output is
    # byte-identical whatever the count. With --with-media one process copies the files.
    workers: int = 1

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise InvalidInput(f"Unknown format {unknown}; use jsonl and/or parquet.")


class RowBuilder:
    """Turns an ImageRecord into an export row; with media, copies the files beside the rows."""

    def __init__(
        self,
        project: str,
        blobs: BlobStore,
        split: SplitSpec,
        public_base_url: str = "",
        media_dir: Path | None = None,
    ) -> None:
        self.project = project
        self.blobs = blobs
        self.split = split
        self.public_base_url = public_base_url.rstrip("/")
        self.media_dir = media_dir
        # Resolved once: BlobStore.path() resolves symlinks per call, which dominated large exports.
        self.blob_root = str(blobs.root.resolve())
        self.media_lines: BinaryIO | None = None
        self.media_files = 0
        self.missing_media: list[str] = []

    def image_url(self, record: ImageRecord) -> str | None:
        if record.source.startswith(("http://", "https://")):
            return record.source
        if self.public_base_url:
            return f"{self.public_base_url}/api/images/{record.id}/original"
        return None

    def image_path(self, record: ImageRecord) -> str:
        """Relative to the export directory with media, else where the bytes are on this machine."""
        if self.media_dir is None:
            return self.local_path(record.blob_key)
        sha = record.sha256
        ext = IMAGE_EXTENSIONS.get(record.format.lower(), Path(record.blob_key).suffix or ".bin")
        return self._copy(record.blob_key, f"media/images/{sha[:2]}/{sha}{ext}")

    def audio_path(self, key: str) -> str:
        if self.media_dir is None:
            return self.local_path(key)
        name = Path(key).name
        return self._copy(key, f"media/audio/{name[:2]}/{name}")

    def local_path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise InvalidInput(f"bad blob key {key!r}")
        return f"{self.blob_root}/{key}"

    def _copy(self, key: str, relative: str) -> str:
        assert self.media_dir is not None
        target = self.media_dir.parent / relative
        if not target.exists():
            source = self.blobs.path(key)
            if not source.is_file():
                if len(self.missing_media) < 100:
                    self.missing_media.append(key)
                return relative
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
            if self.media_lines is not None:
                # Blob keys are the sha256 of the bytes, so the media list costs no re-hashing.
                digest = Path(key).name.split(".", 1)[0]
                self.media_lines.write(f"{digest}  {relative}\n".encode())
            self.media_files += 1
        return relative

    def row(self, record: ImageRecord) -> dict[str, Any]:
        chosen = record.chosen
        review = max(record.reviews, key=lambda r: r.created_at) if record.reviews else None
        return {
            # PixMo-Cap's fields first.
            "image_url": self.image_url(record),
            "caption": chosen.text if chosen else None,
            "transcripts": [r.transcript for r in record.recordings],
            "image_path": self.image_path(record),
            "image_id": record.id,
            "sha256": record.sha256,
            "width": record.width,
            "height": record.height,
            "split": self.split.split_of(record.sha256),
            "project": self.project,
            "caption_id": chosen.id if chosen else None,
            "captions": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "status": c.status,
                    "chosen": chosen is not None and c.id == chosen.id,
                    "text": c.text,
                    "cleaner": c.cleaner,
                    "model": c.model,
                    "prompt_version": c.prompt_version,
                    "recording_id": c.recording_id,
                    "transcript_id": c.transcript_id,
                    "parent_id": c.parent_id,
                    "faithfulness": c.faithfulness,
                    "flagged": c.flagged,
                    "flags": [str(f) if not isinstance(f, str) else f for f in c.flags],
                    "created_at": c.created_at.isoformat(),
                }
                for c in record.captions
            ],
            "recordings": [
                {
                    "id": r.id,
                    "annotator": r.annotator,
                    "seconds": r.seconds,
                    "language": r.language,
                    "transcript": r.transcript,
                    "segments": r.segments,
                    "engine": r.engine,
                    "model": r.model,
                    "audio_path": self.audio_path(r.original_key),
                    "content_type": r.content_type,
                    "created_at": r.created_at.isoformat(),
                }
                for r in record.recordings
            ],
            "review": (
                {
                    "caption_id": review.caption_id,
                    "decision": review.decision,
                    "reviewer": review.reviewer,
                    "reason": review.reason,
                    "source": review.source,
                    "created_at": review.created_at.isoformat(),
                }
                if review
                else None
            ),
        }


try:  # orjson encodes rows several times faster; the output is the same compact UTF-8 JSON.
    import orjson

    def encode_line(row: dict[str, Any]) -> bytes:
        return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)

except ImportError:  # pragma: no cover - orjson is optional

    def encode_line(row: dict[str, Any]) -> bytes:
        return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def iter_rows(
    engine: Engine,
    builder: RowBuilder,
    flt: ExportFilter,
    window: int = 1000,
    after_id: int = 0,
    upto_id: int | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Export rows, one window at a time (rows without a chosen caption are kept only for `all`)."""
    for records in iter_records(engine, flt, window, after_id, upto_id):
        rows = [builder.row(r) for r in records if r.chosen is not None or flt.state == "all"]
        if rows:
            yield rows


def stream_jsonl(
    engine: Engine, builder: RowBuilder, flt: ExportFilter, window: int = 1000
) -> Iterator[bytes]:
    """All splits as one JSONL stream (each row carries its `split`), in chunks of about a window."""
    for rows in iter_rows(engine, builder, flt, window):
        yield b"".join(encode_line(row) for row in rows)


def write_parquet(
    engine: Engine, builder: RowBuilder, flt: ExportFilter, path: Path, window: int = 1000
) -> int:
    """All splits in one Parquet file (each row carries its `split`), written under a temp name; rows."""
    writer = _ParquetSplit(Path(path))
    try:
        for rows in iter_rows(engine, builder, flt, window):
            for row in rows:
                writer.add(row)
        writer.close()
    except BaseException:
        writer.discard()
        raise
    os.replace(writer.tmp, writer.final)
    return writer.rows


def zip_directory(directory: Path, target: Path) -> None:
    """Zip an export directory (JSONL deflated, Parquet and media stored as they are) under a temp name."""
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            packed = path.suffix in {".jsonl", ".json", ".sha256"}
            archive.write(
                path,
                path.relative_to(directory).as_posix(),
                compress_type=zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED,
            )
    os.replace(tmp, target)


class _HashingFile:
    """A `.tmp` file that hashes what is written and becomes its final name only on commit()."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + ".tmp")
        self.handle: BinaryIO = self.tmp.open("wb", buffering=1024 * 1024)
        self.digest = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self.bytes += len(data)

    def append_file(self, path: Path) -> None:
        """Append another file's bytes (a worker's part), hashing them on the way."""
        with path.open("rb") as part:
            for chunk in iter(lambda: part.read(1024 * 1024), b""):
                self.write(chunk)
        path.unlink()

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()

    def discard(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.tmp.unlink(missing_ok=True)


class _ParquetSplit:
    """One split's Parquet file, written in row groups from buffered rows."""

    def __init__(self, final: Path, temp: bool = True) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + ".tmp") if temp else final
        self.schema = ROW_SCHEMA
        self.writer = pq.ParquetWriter(self.tmp, ROW_SCHEMA, compression="zstd")
        self.buffer: list[dict[str, Any]] = []
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= PARQUET_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
            self.rows += len(self.buffer)
            self.buffer = []

    def append_file(self, path: Path) -> None:
        """Append a worker's part file, row group by row group."""
        self.flush()
        part = pq.ParquetFile(path)
        for group in range(part.num_row_groups):
            table = part.read_row_group(group)
            self.writer.write_table(table)
            self.rows += table.num_rows
        part.close()
        path.unlink()

    def close(self) -> None:
        self.flush()
        self.writer.close()

    def discard(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def code_version() -> dict[str, Any]:
    """The package version and, from a source checkout, the git commit (with a dirty mark)."""
    try:
        version = metadata.version("voicecap")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = None
    repo = Path(__file__).resolve().parents[2]
    if (repo / ".git").exists():
        try:
            commit = subprocess.run(
                ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=40"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"voicecap": version, "git": commit}


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _prepare_dir(out_dir: Path, overwrite: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    finished = [p.name for p in out_dir.iterdir() if not p.name.endswith(".tmp")]
    if finished and not overwrite:
        raise Conflict(f"{out_dir} is not empty ({', '.join(sorted(finished)[:5])}…); pass --overwrite.")
    # The manifest goes first: files left from the old export are no longer vouched for.
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for name in [f"{s}.{f}" for s in SPLITS for f in FORMATS] + [MEDIA_LIST]:
        (out_dir / name).unlink(missing_ok=True)
    for stale in out_dir.glob("*.tmp"):
        stale.unlink()


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TOTALS = ("images", "with_caption", "recordings", "transcripts", "captions", "reviewed")


def _tally(row: dict[str, Any], counts: dict[str, int], totals: dict[str, int]) -> None:
    counts[row["split"]] += 1
    totals["images"] += 1
    totals["with_caption"] += row["caption"] is not None
    totals["recordings"] += len(row["recordings"])
    totals["transcripts"] += len(row["transcripts"])
    totals["captions"] += len(row["captions"])
    totals["reviewed"] += row["review"] is not None


def _worker_count(options: ExportOptions, expected: int) -> int:
    if options.with_media:
        return 1
    if options.workers > 0:
        return max(1, min(options.workers, expected))
    if expected < PARALLEL_MIN_ROWS:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), 4))


def _part_path(out_dir: Path, split: str, fmt: str, index: int) -> Path:
    return out_dir / f"{split}.{fmt}.part{index}.tmp"


@dataclass
class _PartJob:
    """One id range of a parallel export, run in its own process."""

    database_url: str
    project_name: str
    blob_root: str
    options: ExportOptions
    out_dir: str
    index: int
    after_id: int
    upto_id: int | None


def _run_part(job: _PartJob, queue: Any) -> tuple[dict[str, int], dict[str, int], int]:
    from db.session import make_engine

    gc.freeze()  # as in `voicecap export`: spare full collections the imported modules' objects

    engine = make_engine(job.database_url)
    out_dir = Path(job.out_dir)
    options = job.options
    builder = RowBuilder(
        job.project_name, BlobStore(Path(job.blob_root)), options.split, options.public_base_url
    )
    jsonl = (
        {s: _part_path(out_dir, s, "jsonl", job.index).open("wb", buffering=1024 * 1024) for s in SPLITS}
        if "jsonl" in options.formats
        else {}
    )
    parquet = (
        {s: _ParquetSplit(_part_path(out_dir, s, "parquet", job.index), temp=False) for s in SPLITS}
        if "parquet" in options.formats
        else {}
    )
    counts = dict.fromkeys(SPLITS, 0)
    totals = dict.fromkeys(TOTALS, 0)
    try:
        for rows in iter_rows(engine, builder, options.filter, options.window, job.after_id, job.upto_id):
            for row in rows:
                _tally(row, counts, totals)
                if jsonl:
                    jsonl[row["split"]].write(encode_line(row))
                if parquet:
                    parquet[row["split"]].add(row)
            queue.put(len(rows))
        for handle in jsonl.values():
            handle.close()
        for writer in parquet.values():
            writer.close()
    finally:
        for handle in jsonl.values():
            handle.close()
        engine.dispose()
    return counts, totals, job.index


class _Parts:
    """The worker processes of a parallel export (spawned: a fresh interpreter owns fresh connections)."""

    def __init__(self, jobs: list[_PartJob]) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        self.manager = context.Manager()
        self.queue = self.manager.Queue()
        self.pool = ProcessPoolExecutor(max_workers=len(jobs), mp_context=context)
        self.futures = [self.pool.submit(_run_part, job, self.queue) for job in jobs]

    def report(self, progress: Progress | None) -> None:
        import queue as queue_module

        while True:
            try:
                done = self.queue.get_nowait()
            except queue_module.Empty:
                return
            if progress is not None:
                progress(done)

    def results(self, progress: Progress | None) -> Iterator[tuple[dict[str, int], dict[str, int], int]]:
        from concurrent.futures import TimeoutError as FutureTimeout

        for future in self.futures:
            while True:
                try:
                    result = future.result(timeout=0.2)
                    break
                except FutureTimeout:
                    self.report(progress)
            self.report(progress)
            yield result

    def shutdown(self) -> None:
        for future in self.futures:
            future.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.manager.shutdown()


def _start_parts(
    engine: Engine,
    blobs: BlobStore,
    project: Project,
    options: ExportOptions,
    out_dir: Path,
    ranges: list[tuple[int, int | None]],
) -> _Parts:
    blob_root = str(blobs.root.resolve())
    jobs = [
        _PartJob(
            database_url=engine.url.render_as_string(hide_password=False),
            project_name=project.name,
            blob_root=blob_root,
            options=options,
            out_dir=str(out_dir),
            index=index,
            after_id=after_id,
            upto_id=upto_id,
        )
        for index, (after_id, upto_id) in enumerate(ranges, start=1)
    ]
    return _Parts(jobs)


def export_dataset(
    engine: Engine,
    blobs: BlobStore,
    project: Project,
    options: ExportOptions,
    out_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the export into out_dir and return its manifest. `progress(n)` is called per window."""
    flt = options.filter
    if flt.project_id != project.id:
        raise InvalidInput("The filter names another project.")
    out_dir = Path(out_dir)
    _prepare_dir(out_dir, options.overwrite)
    started = datetime.now(UTC)
    expected = count_images(engine, flt)

    media_dir = out_dir / "media" if options.with_media else None
    builder = RowBuilder(project.name, blobs, options.split, options.public_base_url, media_dir)
    jsonl = {s: _HashingFile(out_dir / f"{s}.jsonl") for s in SPLITS} if "jsonl" in options.formats else {}
    parquet = (
        {s: _ParquetSplit(out_dir / f"{s}.parquet") for s in SPLITS} if "parquet" in options.formats else {}
    )
    media_list = _HashingFile(out_dir / MEDIA_LIST) if options.with_media else None
    if media_list is not None:
        builder.media_lines = media_list  # type: ignore[assignment]
    counts = dict.fromkeys(SPLITS, 0)
    totals = dict.fromkeys(TOTALS, 0)
    workers = _worker_count(options, expected)
    bounds = range_bounds(engine, flt, workers, expected) if workers > 1 else []
    ranges = list(zip([0, *bounds], [*bounds, None], strict=True))
    parts = _start_parts(engine, blobs, project, options, out_dir, ranges[1:]) if len(ranges) > 1 else None
    try:
        first_after, first_upto = ranges[0]
        for rows in iter_rows(engine, builder, flt, options.window, first_after, first_upto):
            for row in rows:
                _tally(row, counts, totals)
                if jsonl:
                    jsonl[row["split"]].write(encode_line(row))
                if parquet:
                    parquet[row["split"]].add(row)
            if progress is not None:
                progress(len(rows))
            if parts is not None:
                parts.report(progress)
        if parts is not None:
            for part_counts, part_totals, index in parts.results(progress):
                for split in SPLITS:
                    counts[split] += part_counts[split]
                    if jsonl:
                        jsonl[split].append_file(_part_path(out_dir, split, "jsonl", index))
                    if parquet:
                        parquet[split].append_file(_part_path(out_dir, split, "parquet", index))
                for key in TOTALS:
                    totals[key] += part_totals[key]
        for writer in [*jsonl.values(), *parquet.values()]:
            writer.close()
        if media_list is not None:
            media_list.close()
    except BaseException:
        for writer in [*jsonl.values(), *parquet.values()]:
            writer.discard()
        if media_list is not None:
            media_list.discard()
        raise
    finally:
        if parts is not None:
            parts.shutdown()
        for leftover in out_dir.glob("*.part*.tmp"):
            leftover.unlink(missing_ok=True)

    files: list[dict[str, Any]] = []
    # Every file is complete and fsynced: now give each its finished name (an empty split gets none).
    for split in SPLITS:
        for fmt, writers in (("jsonl", jsonl), ("parquet", parquet)):
            writer = writers.get(split)
            if writer is None:
                continue
            if counts[split] == 0:
                writer.tmp.unlink(missing_ok=True)
                continue
            digest = writer.digest.hexdigest() if isinstance(writer, _HashingFile) else _sha256_of(writer.tmp)
            os.replace(writer.tmp, writer.final)
            files.append(
                {
                    "path": writer.final.name,
                    "format": fmt,
                    "split": split,
                    "rows": counts[split],
                    "bytes": writer.final.stat().st_size,
                    "sha256": digest,
                }
            )
    if media_list is not None:
        os.replace(media_list.tmp, media_list.final)
        files.append(
            {
                "path": MEDIA_LIST,
                "format": "sha256sum",
                "rows": builder.media_files,
                "bytes": media_list.bytes,
                "sha256": media_list.digest.hexdigest(),
            }
        )
    _fsync_dir(out_dir)

    manifest = {
        "format_version": 1,
        "project": {"id": project.id, "name": project.name},
        "created_at": started.isoformat(),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
        "code_version": code_version(),
        "database": "sqlite" if is_sqlite(engine) else engine.dialect.name,
        "filters": flt.as_dict(),
        "split": options.split.as_dict(),
        "formats": list(options.formats),
        "with_media": options.with_media,
        "counts": {**totals, "splits": counts, "selected_at_start": expected},
        "missing_media": builder.missing_media,
        "files": files,
        "load_with": {
            "datasets": 'load_dataset("json", data_files={"train": "train.jsonl", '
            '"validation": "validation.jsonl", "test": "test.jsonl"})',
            "pandas": 'pandas.read_json("train.jsonl", lines=True)',
        },
    }
    _write_json_atomically(out_dir / MANIFEST, manifest)
    return manifest


def verify_export(out_dir: Path) -> list[str]:
    """Problems with an export directory against its manifest (empty when every file checks out)."""
    manifest_path = Path(out_dir) / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing: the export did not finish."]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = []
    for entry in manifest["files"]:
        path = Path(out_dir) / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
        elif _sha256_of(path) != entry["sha256"]:
            problems.append(f"{entry['path']} does not match its sha256")
    return problems
