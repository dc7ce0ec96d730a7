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

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from annotate.errors import InvalidInput
from annotate.services.export.card import load_with, write_card
from annotate.services.export.files import (
    FORMATS,
    MEDIA_LIST,
    HashingFile,
    prepare_dir,
    sha256_of,
    split_file,
)
from annotate.services.export.manifest import code_version, file_entry, write_manifest
from annotate.services.export.narratives import FORMAT as NARRATIVES
from annotate.services.export.narratives import load_words, narratives
from annotate.services.export.parts import PartBuilders, PartJob, Progress, Run, part_path
from annotate.services.export.pointing import PIXMO_POINTS, pixmo_points_lines
from annotate.services.export.profiles import PROFILES, Profile
from annotate.services.export.rows import (
    PARSING_FORMATS,
    TOTALS,
    RowBuilder,
    encode_line,
    iter_rows,
    write_rows,
)
from annotate.services.export.selection import SPLITS, ExportFilter, SplitSpec, count_images, plan_parts
from annotate.services.media_links import MediaLinks
from db.blobstore import Blobs
from db.models import Project
from db.session import is_sqlite

PARALLEL_MIN_ROWS = 50_000
# Runs per part builder in a parallel export: enough that appending keeps pace with building, and the last
# run (appended after everything else is built) is small.
RUNS_PER_BUILDER = 4


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
    # full (every field) or pixmo-cap (PixMo-Cap's columns + image_sha256): see profiles.py.
    profile: str = "full"
    # Signed links to images and audio (set with a public base URL): fetchable without a session.
    links: MediaLinks | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise InvalidInput(f"Unknown profile {self.profile!r}; use {' or '.join(PROFILES)}.")
        needs_url = [
            *(["The pixmo-cap profile"] if self.profile == "pixmo-cap" else []),
            *(["The pixmo-points format"] if PIXMO_POINTS in self.formats else []),
        ]
        if needs_url and self.links is None and not self.with_media:
            raise InvalidInput(
                f"{needs_url[0]} needs an image_url for every image: set VOICECAP_PUBLIC_BASE_URL "
                "(signed links) or pass --with-media (paths relative to the export)."
            )
        self.formats = tuple(dict.fromkeys(self.formats))  # each format once, in the order asked
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise InvalidInput(f"Unknown format {', '.join(unknown)}; use {' and/or '.join(FORMATS)}.")
        if not self.formats:
            raise InvalidInput(f"No format asked for; use {' and/or '.join(FORMATS)}.")


@dataclass
class ExportRun:
    """One export under way: what it reads, the files it writes, and what it has counted so far."""

    engine: Engine
    blobs: Blobs
    project: Project
    options: ExportOptions
    out_dir: Path
    builder: RowBuilder
    progress: Progress | None
    jsonl: dict[str, HashingFile] = field(default_factory=dict)  # by split; empty: JSONL not asked for
    parquet: dict[str, Any] = field(default_factory=dict)  # ParquetSplit by split, likewise
    media_list: HashingFile | None = None
    narratives: dict[str, HashingFile] = field(default_factory=dict)  # by split; empty: not asked for
    narrative_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    pixmo_points: dict[str, HashingFile] = field(default_factory=dict)  # by split; empty: not asked for
    pixmo_points_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTALS, 0))

    def writers(self) -> list[Any]:
        media = [self.media_list] if self.media_list is not None else []
        return [
            *self.jsonl.values(),
            *self.parquet.values(),
            *self.narratives.values(),
            *self.pixmo_points.values(),
            *media,
        ]

    @property
    def profile(self) -> Profile:
        return PROFILES[self.options.profile]

    def add(self, counts: dict[str, int], totals: dict[str, int]) -> None:
        """Count a run some part builder wrote."""
        for split in SPLITS:
            self.counts[split] += counts[split]
        for key in TOTALS:
            self.totals[key] += totals[key]


def _open_run(
    engine: Engine,
    blobs: Blobs,
    project: Project,
    options: ExportOptions,
    out_dir: Path,
    progress: Progress | None,
) -> ExportRun:
    """The run with its files open under temp names (Parquet's module is imported only when asked for)."""
    media_dir = out_dir / "media" if options.with_media else None
    builder = RowBuilder(
        project.name,
        blobs,
        options.split,
        options.public_base_url,
        media_dir,
        links=options.links,
        pixmo_urls=options.profile == "pixmo-cap",
        raw_json=not PARSING_FORMATS & set(options.formats),
    )
    run = ExportRun(engine, blobs, project, options, out_dir, builder, progress)
    if "jsonl" in options.formats:
        run.jsonl = {s: HashingFile(split_file(out_dir, s, "jsonl")) for s in SPLITS}
    if "parquet" in options.formats:
        from annotate.services.export.parquet import ParquetSplit

        struct = run.profile.struct
        run.parquet = {s: ParquetSplit(split_file(out_dir, s, "parquet"), struct=struct) for s in SPLITS}
    if NARRATIVES in options.formats:
        run.narratives = {s: HashingFile(split_file(out_dir, s, NARRATIVES)) for s in SPLITS}
    if PIXMO_POINTS in options.formats:
        run.pixmo_points = {s: HashingFile(split_file(out_dir, s, PIXMO_POINTS)) for s in SPLITS}
    if options.with_media:
        run.media_list = builder.media_lines = HashingFile(out_dir / MEDIA_LIST)
    return run


def _requested_workers(options: ExportOptions) -> int:
    """Processes asked for: 1 with media (one process copies the files), another profile than full,
    Localized Narratives or PixMo-Points (part builders write full rows only), else the option, else one
    per core (at most 4)."""
    one_process = (NARRATIVES, PIXMO_POINTS)
    if options.with_media or options.profile != "full" or any(f in options.formats for f in one_process):
        return 1
    if options.workers > 0:
        return options.workers
    return max(1, min(len(os.sched_getaffinity(0)), 4))


def _plan(engine: Engine, options: ExportOptions) -> tuple[int, list[Run], int]:
    """How many part builders, building which runs (none: build in this process), and the image count."""
    flt = options.filter
    builders = _requested_workers(options)
    if builders <= 1:
        return 1, [], count_images(engine, flt)
    plan = plan_parts(engine, flt, builders * RUNS_PER_BUILDER)
    expected = sum(count for _last, count in plan)
    if options.workers == 0 and expected < PARALLEL_MIN_ROWS:
        return 1, [], expected  # a small export is done before processes would have started
    # The runs as id ranges; the last is open-ended, as a single-process export is.
    runs = []
    after = 0
    for index, (last, _count) in enumerate(plan):
        runs.append(Run(index, after, last if index < len(plan) - 1 else None))
        after = last
    if len(runs) < 2:
        return 1, [], expected
    return min(builders, len(runs)), runs, expected


def _write_single(run: ExportRun) -> None:
    """Build every row in this process (small exports, and exports with media)."""
    options = run.options
    for rows in iter_rows(run.engine, run.builder, options.filter, options.window):
        write_rows(rows, run.jsonl, run.parquet, run.counts, run.totals, run.profile.shape)
        if run.narratives:
            _write_narratives(run, rows)
        if run.pixmo_points:
            _write_pixmo_points(run, rows)
        if run.progress is not None:
            run.progress(len(rows))


def _write_narratives(run: ExportRun, rows: list[dict[str, Any]]) -> None:
    """A window's Localized Narratives lines, one per recording, with its words read in one query."""
    words = load_words(run.engine, [r["id"] for row in rows for r in row["recordings"]])
    links = run.options.links if not run.options.with_media else None

    def voice(recording: dict[str, Any]) -> str:
        return recording["audio_path"] if links is None else links.audio((recording["id"],))

    for row in rows:
        for line in narratives(row, words, voice):
            run.narratives[row["split"]].write(encode_line(line))
            run.narrative_counts[row["split"]] += 1


def _write_pixmo_points(run: ExportRun, rows: list[dict[str, Any]]) -> None:
    """A window's PixMo-Points lines, one per labelled group of points (image, label and take)."""
    with_media = run.options.with_media
    for row in rows:
        url = row["image_path"] if with_media else row["image_url"]
        for line in pixmo_points_lines(row, url):
            run.pixmo_points[row["split"]].write(encode_line(line))
            run.pixmo_points_counts[row["split"]] += 1


def _part_jobs(run: ExportRun, runs: list[Run], builders: int) -> list[PartJob]:
    """Builder b builds runs b, b + builders, …"""
    options = run.options
    return [
        PartJob(
            database_url=run.engine.url.render_as_string(hide_password=False),
            project_name=run.project.name,
            blob_root=run.blobs.url,
            out_dir=str(run.out_dir),
            filter=options.filter.as_dict(),
            split=options.split.percentages(),
            formats=list(options.formats),
            window=options.window,
            public_base_url=options.public_base_url,
            runs=runs[number::builders],
        )
        for number in range(builders)
    ]


def _write_parallel(run: ExportRun, runs: list[Run], builders: int) -> None:
    """Part builder processes build the runs; here each run's parts are appended in order as it is done."""
    pool = PartBuilders(_part_jobs(run, runs, builders))
    try:
        for part in runs:
            run.add(*pool.wait_for(part.index, run.progress))
            for split in SPLITS:
                for fmt, by_split in (("jsonl", run.jsonl), ("parquet", run.parquet)):
                    if by_split:
                        by_split[split].append_file(part_path(run.out_dir, split, fmt, part.index))
        pool.finish()
    finally:
        pool.close()


def _publish(run: ExportRun) -> list[dict[str, Any]]:
    """Give every complete, fsynced file its finished name (an empty split gets none); their manifest
    entries."""
    files: list[dict[str, Any]] = []
    for split in SPLITS:
        written = (
            ("jsonl", run.jsonl, run.counts),
            ("parquet", run.parquet, run.counts),
            (NARRATIVES, run.narratives, run.narrative_counts),
            (PIXMO_POINTS, run.pixmo_points, run.pixmo_points_counts),
        )
        for fmt, by_split, counts in written:
            writer = by_split.get(split)
            if writer is None:
                continue
            if counts[split] == 0:
                writer.tmp.unlink(missing_ok=True)
                continue
            digest = writer.sha256()
            writer.publish()
            size = writer.final.stat().st_size
            files.append(file_entry(writer.final, fmt, split, counts[split], size, digest))
    media = run.media_list
    if media is not None:
        media.publish()
        rows = run.builder.media_files
        files.append(file_entry(media.final, "sha256sum", None, rows, media.bytes, media.sha256()))
    return files


def _manifest(
    run: ExportRun, started: datetime, expected: int, files: list[dict[str, Any]]
) -> dict[str, Any]:
    options, engine = run.options, run.engine
    return {
        "format_version": 1,
        "profile": options.profile,
        "project": {"id": run.project.id, "name": run.project.name},
        "created_at": started.isoformat(),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
        "code_version": code_version(),
        "database": "sqlite" if is_sqlite(engine) else engine.dialect.name,
        "filters": options.filter.as_dict(),
        "split": options.split.as_dict(),
        "formats": list(options.formats),
        "with_media": options.with_media,
        "counts": {**run.totals, "splits": run.counts, "selected_at_start": expected},
        "localized_narratives": run.narrative_counts if run.narratives else None,
        "pixmo_points": run.pixmo_points_counts if run.pixmo_points else None,
        "missing_media": run.builder.missing_media,
        "files": files,
        "load_with": load_with(files),
    }


def export_dataset(
    engine: Engine,
    blobs: Blobs,
    project: Project,
    options: ExportOptions,
    out_dir: Path,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the export into out_dir and return its manifest.

    `on_total(n)` is called once with the number of images selected, then `progress(n)` per window built.
    """
    if options.filter.project_id != project.id:
        raise InvalidInput("The filter names another project.")
    out_dir = Path(out_dir)
    prepare_dir(out_dir, options.overwrite)
    started = datetime.now(UTC)
    builders, runs, expected = _plan(engine, options)
    if on_total is not None:
        on_total(expected)
    run = _open_run(engine, blobs, project, options, out_dir, progress)
    try:
        if runs:
            _write_parallel(run, runs, builders)
        else:
            _write_single(run)
        for writer in run.writers():
            writer.close()
    except BaseException:
        for writer in run.writers():
            writer.discard()
        raise
    finally:
        for leftover in out_dir.glob("*.part*.tmp"):
            leftover.unlink(missing_ok=True)
    files = _publish(run)
    card = write_card(out_dir, project.name, run.profile, files)
    files.append(file_entry(card, "dataset-card", None, 0, card.stat().st_size, sha256_of(card)))
    manifest = _manifest(run, started, expected, files)
    write_manifest(out_dir, manifest)
    return manifest


def write_parquet(
    engine: Engine, builder: RowBuilder, flt: ExportFilter, path: Path, window: int = 1000
) -> int:
    """All splits in one Parquet file (each row carries its `split`), written under a temp name; rows."""
    from annotate.services.export.parquet import write_parquet as write

    return write(engine, builder, flt, path, window)
