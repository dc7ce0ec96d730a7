"""`voicecap db …`: schema migrations."""

from __future__ import annotations

import typer

from annotate.cli.common import console, print_json
from db.session import get_engine

db_app = typer.Typer(help="Database schema: create and migrate.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Create or migrate the database schema to this version of voicecap.

    Example: `VOICECAP_DATABASE_URL=postgresql+psycopg://user@host/voicecap voicecap db upgrade`
    """
    # alembic is imported by the commands that use it, so that `voicecap --help` does not load it.
    from db.migrate import current_revision, upgrade

    engine = get_engine()
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"Database {where} is up to date (revision {after}).")
    else:
        console.print(f"Database {where} migrated from {before or 'empty'} to {after}.")


@db_app.command("current")
def current_command(as_json: bool = typer.Option(False, "--json", help="Print a JSON object.")) -> None:
    """Show the schema revision of the database and the one this code needs.

    Example: `voicecap db current --json`
    """
    from db.migrate import current_revision, head_revision

    engine = get_engine()
    current, head = current_revision(engine), head_revision()
    if as_json:
        print_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        console.print(f"current: {current or 'none'}   needed: {head}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
