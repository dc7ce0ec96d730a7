"""`voicecap export`: write a project's dataset as JSONL (and Parquet) with a manifest."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from annotate.cli.common import JSON_OPTION, console, db_session, err_console, fail, print_json, table
from annotate.errors import VoicecapError
from annotate.security import media_links
from annotate.services.projects import get_project
from db.blobstore import get_blobstore
from db.session import get_engine
from db.settings import get_settings

if TYPE_CHECKING:
    from annotate.services.export import ExportOptions
    from db.models import Project

FORMAT_OPTION = typer.Option(
    ["jsonl"],
    "--format",
    "-f",
    help="jsonl, parquet, localized-narratives (one line per recording) and/or pixmo-points (one line per "
    "image, label and take); repeat for several.",
)
PROFILE_OPTION = typer.Option(
    "full",
    "--profile",
    help="full (every field) or pixmo-cap (PixMo-Cap's image_url, caption, transcripts + image_sha256).",
)


def export(
    project: str = typer.Argument(..., help="Project name or id."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write (created; must be empty)."),
    state: str = typer.Option(
        "approved", "--state", help="approved (reviewed and approved), captioned (any live caption), or all."
    ),
    since: str | None = typer.Option(None, "--since", help="Only captions created at/after (ISO date, UTC)."),
    until: str | None = typer.Option(None, "--until", help="Only captions created before (ISO date, UTC)."),
    caption_version: str | None = typer.Option(
        None, "--caption-version", help="Only captions of this prompt version."
    ),
    split: str = typer.Option(
        "90,5,5", "--split", help="train,validation,test percentages; by image hash, stable across runs."
    ),
    formats: list[str] = FORMAT_OPTION,
    profile: str = PROFILE_OPTION,
    with_media: bool = typer.Option(
        False, "--with-media", help="Copy images and audio into OUT/media; rows then give relative paths."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in OUT."),
    workers: int = typer.Option(
        0, "--workers", help="Processes building rows; 0 = one per core for 50,000 rows or more."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Export a project's captions as a dataset: one JSON line per image, split into train/validation/test.

    Each row has PixMo-Cap's `image_url`, `caption` and `transcripts`, plus `image_path`, `image_id`,
    `sha256`, `width`, `height`, `split`, `project`, every caption with its provenance, the recordings
    (seconds, annotator pseudonym, segments) and the latest review. `manifest.json` beside the files
    holds the counts, the filters, the code version and a sha256 of every file. Files are written under
    temporary names and renamed when complete.

    Examples:

    `voicecap export harbour --out exports/harbour-v1`

    `voicecap export harbour --out exports/all --state captioned --format jsonl --format parquet`

    `voicecap export harbour --out exports/jan --since 2026-01-01 --until 2026-02-01 --with-media`

    `voicecap export harbour --out exports/pixmo --profile pixmo-cap --format parquet`: exactly PixMo-Cap's
    columns and image_sha256; each image_url a signed link (VOICECAP_PUBLIC_BASE_URL, valid
    VOICECAP_MEDIA_LINK_DAYS) or, with --with-media, a path relative to OUT.

    `voicecap export harbour --out exports/ln --format localized-narratives`: one line per recording in
    Localized Narratives' format (caption, word timings as timed_caption, the pointer's traces,
    voice_recording).

    `voicecap export deck --out exports/points --format pixmo-points --with-media`: exactly PixMo-Points'
    columns (image_url, image_sha256, points in percent, count, label, collection_method), one line per
    image, label and take; a label answered "none" has count 0.

    Load it: `datasets.load_dataset("exports/harbour-v1")` (README.md's configs name the files written).
    """
    with db_session() as session:
        record = get_project(session, project)
        project_id = record.id
    try:
        options = _options(
            project_id,
            state=state,
            since=since,
            until=until,
            caption_version=caption_version,
            split=split,
            formats=formats,
            with_media=with_media,
            overwrite=overwrite,
            workers=workers,
            profile=profile,
        )
    except VoicecapError as exc:
        fail(exc.message)
    manifest = _export_with_progress(record, options, out, as_json)
    if as_json:
        print_json(manifest)
    else:
        _print_summary(manifest, out)


def _options(
    project_id: int,
    *,
    state: str,
    since: str | None,
    until: str | None,
    caption_version: str | None,
    split: str,
    formats: list[str],
    with_media: bool,
    overwrite: bool,
    workers: int,
    profile: str,
) -> ExportOptions:
    """The export's options; ExportFilter and ExportOptions reject a bad state, format, date or split."""
    # Imported here: the export's modules (and SQLAlchemy's PostgreSQL dialect) load only for an export.
    from annotate.services.export import ExportFilter, ExportOptions, SplitSpec, parse_when

    settings = get_settings()
    flt = ExportFilter(
        project_id=project_id,
        state=state,
        since=parse_when(since),
        until=parse_when(until),
        caption_version=caption_version,
    )
    return ExportOptions(
        filter=flt,
        split=SplitSpec.parse(split),
        formats=tuple(formats),
        with_media=with_media,
        overwrite=overwrite,
        public_base_url=settings.public_base_url,
        workers=workers,
        profile=profile,
        links=media_links(settings),
    )


def _export_with_progress(
    record: Project, options: ExportOptions, out: Path, as_json: bool
) -> dict[str, Any]:
    """Run the export with a progress bar on stderr (none with --json); its manifest."""
    from annotate.services.export import export_dataset

    engine = get_engine()
    # The export makes millions of short-lived objects; each full collection would also walk every object
    # the imports made. Freezing those first took about a tenth off an export's CPU time.
    gc.freeze()
    try:
        with Progress(
            TextColumn("[bold]Exporting[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            disable=as_json,
            transient=True,
        ) as progress:
            task = progress.add_task("export", total=None)
            return export_dataset(
                engine,
                get_blobstore(),
                record,
                options,
                out,
                progress=lambda n: progress.advance(task, n),
                on_total=lambda n: progress.update(task, total=n),
            )
    except VoicecapError as exc:
        fail(exc.message)


def _print_summary(manifest: dict[str, Any], out: Path) -> None:
    counts = manifest["counts"]
    rows = [
        [f["path"], f.get("split", ""), f["rows"], f"{f['bytes']:,}", f["sha256"][:16]]
        for f in manifest["files"]
    ]
    console.print(
        table(
            f"Exported {counts['images']} images to {out}", ["file", "split", "rows", "bytes", "sha256"], rows
        )
    )
    console.print(
        f"{counts['recordings']} recordings, {counts['captions']} captions, {counts['reviewed']} reviewed; "
        f"manifest: {out / 'manifest.json'} ({manifest['seconds']} s)"
    )
    if manifest["missing_media"]:
        err_console.print(f"[yellow]Missing media files:[/] {', '.join(manifest['missing_media'][:10])}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("export")(export)
