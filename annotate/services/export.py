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

import hashlib
import json
import os
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine

from annotate.errors import Conflict, InvalidInput
from annotate.services.export_build import TOTALS, RowBuilder, encode_line, iter_rows, write_rows
from annotate.services.export_parts import PartJob, PartWorkers, Progress, Run, part_path
from annotate.services.export_rows import SPLITS, ExportFilter, SplitSpec, count_images, plan_parts
from db.blobstore import BlobStore
from db.models import Project
from db.session import is_sqlite

__all__ = [
    "FORMATS",
    "ExportOptions",
    "RowBuilder",
    "export_dataset",
    "stream_jsonl",
    "verify_export",
    "write_parquet",
    "zip_directory",
]

FORMATS: tuple[str, ...] = ("jsonl", "parquet")
MANIFEST = "manifest.json"
MEDIA_LIST = "media.sha256"
PARALLEL_MIN_ROWS = 50_000
# Runs per worker in a parallel export: enough that appending keeps pace with building, and the last run
# (appended after everything else is built) is small.
RUNS_PER_WORKER = 4


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
    from annotate.services.export_parquet import write_parquet as write

    return write(engine, builder, flt, path, window)


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


def _requested_workers(options: ExportOptions) -> int:
    """Worker processes asked for: 1 with media (one process copies the files), else the option, else
    one per core (at most 4)."""
    if options.with_media:
        return 1
    if options.workers > 0:
        return options.workers
    return max(1, min(len(os.sched_getaffinity(0)), 4))


def _runs_of(plan: list[tuple[int, int]]) -> list[Run]:
    """The planned runs as id ranges; the last is open-ended, as a single-process export is."""
    runs = []
    after = 0
    for index, (last, _count) in enumerate(plan):
        runs.append(Run(index, after, last if index < len(plan) - 1 else None))
        after = last
    return runs


def _write_single(
    engine: Engine,
    builder: RowBuilder,
    options: ExportOptions,
    writers: dict[str, dict[str, Any]],
    counts: dict[str, int],
    totals: dict[str, int],
    progress: Progress | None,
) -> None:
    """Build every row in this process (small exports, and exports with media)."""
    jsonl, parquet = writers["jsonl"], writers["parquet"]
    for rows in iter_rows(engine, builder, options.filter, options.window):
        write_rows(rows, jsonl, parquet, counts, totals)
        if progress is not None:
            progress(len(rows))


def _write_parallel(
    engine: Engine,
    blobs: BlobStore,
    project: Project,
    options: ExportOptions,
    out_dir: Path,
    runs: list[Run],
    workers: int,
    writers: dict[str, dict[str, Any]],
    counts: dict[str, int],
    totals: dict[str, int],
    progress: Progress | None,
) -> None:
    """Worker processes build the runs (worker w: runs w, w + workers, …); here they are appended in order."""
    jobs = [
        PartJob(
            database_url=engine.url.render_as_string(hide_password=False),
            project_name=project.name,
            blob_root=str(blobs.root.resolve()),
            out_dir=str(out_dir),
            filter=options.filter.as_dict(),
            split={
                "train": options.split.train,
                "validation": options.split.validation,
                "test": options.split.test,
            },
            formats=list(options.formats),
            window=options.window,
            public_base_url=options.public_base_url,
            runs=runs[number::workers],
        )
        for number in range(workers)
    ]
    pool = PartWorkers(jobs)
    try:
        for run in runs:
            run_counts, run_totals = pool.wait_for(run.index, progress)
            for split in SPLITS:
                counts[split] += run_counts[split]
                for fmt, by_split in writers.items():
                    if by_split:
                        by_split[split].append_file(part_path(out_dir, split, fmt, run.index))
            for key in TOTALS:
                totals[key] += run_totals[key]
        pool.finish()
    finally:
        pool.close()


def export_dataset(
    engine: Engine,
    blobs: BlobStore,
    project: Project,
    options: ExportOptions,
    out_dir: Path,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the export into out_dir and return its manifest.

    `on_total(n)` is called once with the number of images selected, then `progress(n)` per window built.
    """
    flt = options.filter
    if flt.project_id != project.id:
        raise InvalidInput("The filter names another project.")
    out_dir = Path(out_dir)
    _prepare_dir(out_dir, options.overwrite)
    started = datetime.now(UTC)

    workers = _requested_workers(options)
    runs: list[Run] = []
    if workers > 1:
        plan = plan_parts(engine, flt, workers * RUNS_PER_WORKER)
        expected = sum(count for _last, count in plan)
        if options.workers == 0 and expected < PARALLEL_MIN_ROWS:
            workers = 1  # a small export is done before processes would have started
        else:
            runs = _runs_of(plan)
            workers = min(workers, len(runs))
    else:
        expected = count_images(engine, flt)
    if on_total is not None:
        on_total(expected)

    media_dir = out_dir / "media" if options.with_media else None
    builder = RowBuilder(project.name, blobs, options.split, options.public_base_url, media_dir)
    jsonl = {s: _HashingFile(out_dir / f"{s}.jsonl") for s in SPLITS} if "jsonl" in options.formats else {}
    parquet: dict[str, Any] = {}
    if "parquet" in options.formats:
        from annotate.services.export_parquet import ParquetSplit

        parquet = {s: ParquetSplit(out_dir / f"{s}.parquet") for s in SPLITS}
    writers = {"jsonl": jsonl, "parquet": parquet}
    media_list = _HashingFile(out_dir / MEDIA_LIST) if options.with_media else None
    if media_list is not None:
        builder.media_lines = media_list
    counts = dict.fromkeys(SPLITS, 0)
    totals = dict.fromkeys(TOTALS, 0)
    try:
        if workers > 1 and len(runs) > 1:
            _write_parallel(
                engine, blobs, project, options, out_dir, runs, workers, writers, counts, totals, progress
            )
        else:
            _write_single(engine, builder, options, writers, counts, totals, progress)
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
        for leftover in out_dir.glob("*.part*.tmp"):
            leftover.unlink(missing_ok=True)

    files: list[dict[str, Any]] = []
    # Every file is complete and fsynced: now give each its finished name (an empty split gets none).
    for split in SPLITS:
        for fmt, by_split in (("jsonl", jsonl), ("parquet", parquet)):
            writer = by_split.get(split)
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
