"""`voicecap serve`: the web app."""

from __future__ import annotations

import typer

from annotate.cli.common import console, fail
from db.settings import get_settings


def serve(
    host: str | None = typer.Option(None, "--host", help="Interface to listen on (default from settings)."),
    port: int | None = typer.Option(None, "--port", help="Port (default from settings: 8000)."),
    workers: int = typer.Option(1, "--workers", help="API processes (use PostgreSQL for more than one)."),
) -> None:
    """Serve the annotation and review web app and its JSON API (docs at /docs).

    Example: `voicecap serve --host 0.0.0.0 --port 8000`
    """
    settings = get_settings()
    # The web stack (uvicorn, FastAPI) and alembic load only here, not for every `voicecap` command.
    import uvicorn

    from annotate.api.app import create_app
    from db.migrate import SchemaOutOfDate

    try:
        create_app(settings)  # fail fast on an out-of-date schema, before binding the port
    except SchemaOutOfDate as exc:
        fail(str(exc), code=2)
    host = host or settings.host
    port = port or settings.port
    console.print(f"voicecap on http://{host}:{port}/  (API docs: /docs)")
    uvicorn.run(
        "annotate.api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info"
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
