"""`voicecap ingest PROJECT SOURCE`: add images to a project from a folder, manifest, URL list or zip."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from annotate.cli.common import JSON_OPTION, console, db_session, fail, print_json, table
from annotate.errors import VoicecapError
from annotate.services.projects import get_project
from db.blobstore import get_blobstore
from db.session import get_engine
from db.settings import get_settings

if TYPE_CHECKING:
    from annotate.services.ingest import IngestSummary

SHOWN_REJECTIONS = 20


def ingest_command(
    project: str = typer.Argument(..., help="Project name or id."),
    source: str = typer.Argument(
        ...,
        help="A folder (searched recursively), a .csv/.tsv/.jsonl manifest, a .txt list of URLs, "
        "a .zip archive, one image file, or one http(s) URL.",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Also write each rejected item as a JSON line {path, reason} to this file."
    ),
    allow_outside: bool = typer.Option(
        False,
        "--allow-outside",
        help="Let a manifest or list name absolute paths and files outside its own folder.",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Threads that read, decode and store images (default: setting ingest_workers; 0 = cores + 1).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add images to a project. Each image is verified with Pillow, measured (after EXIF rotation),
    stored by content hash with a thumbnail, and added once: the same bytes again count as a duplicate.

    Bad files never stop the run; each is listed with its reason. Re-running the same command is safe
    and quick: images already in the project are skipped before they are decoded.

    A manifest names each image in a `path` or `url` column (or image, image_url, image_path, file,
    filename); relative paths are relative to the manifest and must stay inside its folder (absolute
    paths and `..` escapes are refused unless --allow-outside), and every other column is kept as the
    image's metadata. A URL list has one URL per line (# starts a comment).

    Examples:

    `voicecap ingest birds ./photos`

    `voicecap ingest birds images.csv --report rejected.jsonl`

    `voicecap ingest birds urls.txt --json`

    `voicecap ingest birds https://example.org/heron.jpg`
    """
    # Imported here: ingesting loads Pillow and httpx, which other commands do not need.
    from annotate.services import ingest as service

    settings = get_settings()
    with db_session() as session:
        project_row = get_project(session, project)
        project_id, project_name = project_row.id, project_row.name
    try:
        total = service.count_items(source, allow_outside)
        items = service.items_from_source(source, allow_outside)
        workers = workers or service.resolve_workers(settings)
        blobs = get_blobstore()
        if as_json:
            summary = service.ingest(
                get_engine(), blobs, settings, project_id, items, None, report, total=total, workers=workers
            )
        else:
            with _progress_bar() as bar:
                task = bar.add_task(f"Ingesting into {project_name}", total=total)
                summary = service.ingest(
                    get_engine(),
                    blobs,
                    settings,
                    project_id,
                    items,
                    lambda done, _total: bar.update(task, completed=done),
                    report,
                    total=total,
                    workers=workers,
                )
    except VoicecapError as exc:
        fail(exc.message)
    if as_json:
        print_json(summary.to_json())
    else:
        _print_summary(summary, report)


def _progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _print_summary(summary: IngestSummary, report: Path | None) -> None:
    rate = summary.processed / summary.seconds if summary.seconds > 0 else 0.0
    rows = [["added", summary.added, ""], ["duplicate", summary.duplicate, "already in the project"]]
    rows.append(
        ["rejected", len(summary.rejected), ", ".join(f"{n} {k}" for k, n in summary.reasons().items())]
    )
    console.print(
        table(f"Ingest summary ({summary.seconds:.1f} s, {rate:.0f} images/s)", ["", "images", ""], rows)
    )
    if not summary.rejected:
        return
    shown = summary.rejected[:SHOWN_REJECTIONS]
    console.print(table("Rejected", ["path", "reason"], [[r.path, r.reason] for r in shown]))
    hidden = len(summary.rejected) - len(shown)
    if hidden:
        where = f"all of them are in {report}" if report else "use --report FILE to list all of them"
        console.print(f"… and {hidden} more rejected ({where}).")
    elif report:
        console.print(f"Rejections also written to {report}.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("ingest")(ingest_command)
