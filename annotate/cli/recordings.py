"""`voicecap import-audio`: bring in recordings made elsewhere, through the same intake as uploads."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress

from annotate.cli.common import JSON_OPTION, console, db_session, err_console, print_json, table
from annotate.services import projects as project_service
from db.blobstore import get_blobstore
from db.settings import get_settings


def register(app: typer.Typer) -> None:
    app.command("import-audio")(import_audio)


def import_audio(
    project: str = typer.Argument(..., help="Project name or id."),
    manifest: Path = typer.Argument(..., help="JSON Lines file: one recording per line."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import recordings made elsewhere; they then wait for `voicecap transcribe` / `voicecap worker`.

    Each line is a JSON object: `image` (the image's path as ingested, or its sha256), `audio` (a path,
    relative to the manifest's folder), `annotator` (an existing user's name) and optional `metadata`.
    The checks of browser uploads apply (format, size, duration, silence). Re-running an import adds
    nothing twice.

    Example line: `{"image": "photos/cat.jpg", "audio": "audio/cat-ann1.wav", "annotator": "ann1"}`

    Examples: `voicecap import-audio birds recordings.jsonl`; `voicecap import-audio birds r.jsonl --json`
    """
    # Imported here: the audio checks load numpy, PyAV and pydub, which no other command needs.
    from annotate.services import import_audio as service
    from annotate.services.jsonl import count_lines

    settings = get_settings()
    with db_session() as session:
        target = project_service.get_project(session, project)
        total = count_lines(manifest) if manifest.is_file() else 0
        show = not as_json and err_console.is_terminal and total > 1
        with Progress(console=err_console, disable=not show) as progress:
            task = progress.add_task("importing", total=total)
            summary = service.import_audio(
                session,
                get_blobstore(settings.blob_location),
                settings,
                target,
                manifest,
                on_line=lambda _n: progress.advance(task),
            )
    if as_json:
        print_json(summary.as_dict())
        return
    console.print(
        f"Imported {summary.added} recording{'s' if summary.added != 1 else ''} into {project!r} "
        f"({summary.duplicate} already there, {len(summary.rejected)} rejected)."
    )
    if summary.rejected:
        rows = [[r["line"], r.get("path", ""), r["reason"]] for r in summary.rejected[:50]]
        console.print(table("Rejected", ["line", "audio", "reason"], rows))
        if len(summary.rejected) > 50:
            console.print(f"… and {len(summary.rejected) - 50} more (use --json for all).")
    if summary.added:
        console.print("Next: `voicecap transcribe` (or keep `voicecap worker` running).")
