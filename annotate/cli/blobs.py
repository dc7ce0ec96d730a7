"""`voicecap blobs migrate` and `voicecap blobs check`: move the blob store and keep it consistent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta

import typer
from rich.progress import Progress

from annotate.cli.common import JSON_OPTION, console, db_session, err_console, fail, print_json
from db.blobstore import open_blobstore
from db.settings import get_settings

blobs_app = typer.Typer(help="The blob store (images and audio): migrate it, check it.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(blobs_app, name="blobs")


@contextmanager
def _store_errors() -> Iterator[None]:
    """An unreachable bucket, bad credentials or a bad URL: one line, not a traceback."""
    try:
        yield
    except (OSError, ValueError) as exc:
        fail(str(exc))
    except Exception as exc:
        if type(exc).__module__.startswith(("botocore", "boto3")):
            fail(f"the object store refused: {exc}")
        raise


@blobs_app.command("migrate")
def migrate(
    to: str = typer.Option(..., "--to", help="Target store: s3://BUCKET/PREFIX or a folder."),
    source: str = typer.Option("", "--from", help="Source store; default: the configured one."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Copy every blob into another store, verified by hash; run it again to resume.

    Then point every process at the target (`VOICECAP_BLOB_URL`). Blobs already in the target are
    skipped, so it can run while the app runs, and once more after switching, to copy stragglers.

    Examples: `voicecap blobs migrate --to s3://voicecap/blobs`;
    `voicecap blobs migrate --from /srv/voicecap/blobs --to s3://voicecap/blobs --json`
    """
    from annotate.services.blobs import migrate_blobs

    with _store_errors():
        origin = open_blobstore(source or get_settings().blob_location)
        target = open_blobstore(to)
        with db_session(check=False), Progress(console=err_console, disable=as_json) as progress:
            task = progress.add_task("copying", total=None)
            report = migrate_blobs(origin, target, progress=lambda n: progress.advance(task, n))
    if as_json:
        print_json({"from": origin.url, "to": target.url, **asdict(report)})
    else:
        console.print(
            f"Copied {report.copied} blobs ({report.bytes_copied / 1e6:.1f} MB) from {origin.url} to "
            f"{target.url}; {report.skipped} were already there."
        )
        for key in report.corrupt:
            err_console.print(f"[red]corrupt (bytes do not match the key), not copied:[/] {key}")
    if report.corrupt:
        raise typer.Exit(1)


@blobs_app.command("check")
def check(
    sweep: bool = typer.Option(False, "--sweep", help="Delete orphans older than the grace period."),
    grace_hours: float = typer.Option(
        24.0, "--grace-hours", help="Orphans younger than this are kept (uploads still in flight)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Find blobs rows name that are missing, and blobs no row names (orphans).

    Exits 1 when blobs are missing. Orphans are harmless (a crash between storing a blob and committing
    its row leaves one); `--sweep` deletes those older than `--grace-hours`.

    Examples: `voicecap blobs check`; `voicecap blobs check --sweep --grace-hours 48 --json`
    """
    from annotate.services.blobs import check_blobs

    with _store_errors(), db_session() as session:
        store = open_blobstore(get_settings().blob_location)
        report = check_blobs(session, store, sweep=sweep, grace=timedelta(hours=grace_hours))
    if as_json:
        print_json({"store": store.url, **asdict(report)})
    else:
        console.print(
            f"{store.url}: {report.stored} blobs stored, {report.referenced} named by rows; "
            f"{report.missing} missing, {report.orphans} orphans"
            + (f", {report.swept} swept ({report.temporaries_swept} upload leftovers)" if sweep else "")
        )
        for key in report.missing_sample:
            err_console.print(f"[red]missing:[/] {key}")
    if report.missing:
        raise typer.Exit(1)
