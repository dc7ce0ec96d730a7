"""`voicecap demo`: the whole pipeline on the embedded defaults, in one command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from annotate.cli.common import console, print_json, table
from db.settings import get_settings, reset_settings_cache


def demo(
    directory: Path = typer.Option(Path("./voicecap-demo"), "--dir", help="Where the demo keeps its data."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface for the web app."),
    port: int = typer.Option(8000, "--port", help="Port for the web app."),
    images: Path | None = typer.Option(None, "--images", help="Images to ingest (default: examples/images)."),
    workers: bool = typer.Option(True, "--workers/--no-workers", help="Run the transcribe+clean worker too."),
    setup_only: bool = typer.Option(False, "--setup-only", help="Prepare data and users, then exit."),
    as_json: bool = typer.Option(False, "--json", help="With --setup-only: print the setup as JSON."),
    mode: str = typer.Option(
        "describe",
        "--mode",
        help="describe (speak), narrate (speak while pointing) or point (point at person, coin, text).",
    ),
) -> None:
    """Run the demo: SQLite under ./voicecap-demo, the example images in project `demo`, a demo annotator
    and lead (passwords printed), the web app, and a worker that transcribes and cleans what you record.

    Ctrl-C stops everything. Re-running keeps the data and prints new passwords.

    `--mode narrate` or `--mode point` adds project `demo-narrate` / `demo-point` to try pointing; use a
    fresh `--dir` to see it first (an annotator is given the open projects' images in order).

    Example: `voicecap demo --port 8080`, `voicecap demo --mode point --dir ./voicecap-demo-point`
    """
    # uvicorn and the services load only here, not for every `voicecap` command.
    import uvicorn

    from annotate.services.demo import find_example_images, setup_demo
    from db.models import ProjectMode

    directory = directory.resolve()
    # The worker subprocess and this process read the same settings from the environment.
    os.environ["VOICECAP_DATA_DIR"] = str(directory)
    os.environ["VOICECAP_DATABASE_URL"] = f"sqlite:///{directory / 'voicecap.db'}"
    reset_settings_cache()
    settings = get_settings()
    try:
        project_mode = ProjectMode(mode)
    except ValueError:
        raise typer.BadParameter("choose describe, narrate or point", param_hint="--mode") from None
    setup = setup_demo(settings, find_example_images(images), project_mode)

    if as_json:
        print_json(
            {
                "project": setup.project,
                "images_added": setup.images_added,
                "images": setup.images_total,
                "logins": setup.logins,
                "url": f"http://{host}:{port}/",
            }
        )
    else:
        console.print(
            f"Demo data in [bold]{directory}[/]: project [bold]{setup.project}[/] with "
            f"{setup.images_total} images ({setup.images_added} new)."
        )
        console.print(
            table(
                "Log in with",
                ["user", "role", "password"],
                [[n, v["role"], v["password"]] for n, v in setup.logins.items()],
            )
        )
    if setup_only:
        return

    worker = None
    if workers:
        worker = subprocess.Popen(
            [sys.executable, "-m", "annotate.cli.main", "worker", "--stages", "transcribe,clean"],
            start_new_session=False,
        )
        console.print("Worker started: recordings are transcribed and cleaned as they arrive.")
    console.print(
        f"Open [bold]http://{host}:{port}/[/] (annotators record at /task, leads review at /review). "
        "Ctrl-C stops everything."
    )
    try:
        uvicorn.run("annotate.api.app:create_app", factory=True, host=host, port=port, log_level="warning")
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # finishes its current batch, then exits
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        console.print("Demo stopped.")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
