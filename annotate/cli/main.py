"""The `voicecap` command. Each topic module registers its commands; logic lives in annotate.services."""

from __future__ import annotations

import typer

from annotate.cli import (
    blobs,
    dbcmd,
    demo,
    exporting,
    ingesting,
    labelstudio,
    llm,
    models,
    projects,
    recordings,
    reviewing,
    serve,
    users,
    workers,
)

app = typer.Typer(
    name="voicecap",
    help=(
        "voicecap: spoken image descriptions in, dense written captions out.\n\n"
        "Start with `voicecap demo`, or: `voicecap db upgrade`, `voicecap project create`, "
        "`voicecap ingest`, `voicecap serve`, `voicecap worker`, `voicecap export`."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)

for module in (
    dbcmd,
    users,
    projects,
    ingesting,
    serve,
    demo,
    recordings,
    workers,
    reviewing,
    exporting,
    labelstudio,
    llm,
    models,
    blobs,
):
    module.register(app)


if __name__ == "__main__":
    app()
