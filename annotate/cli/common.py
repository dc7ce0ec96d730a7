"""What every CLI command shares: a session on a migrated database, errors as messages, --json output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from annotate.errors import VoicecapError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print only a JSON object, for scripts.")


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]Error:[/] {message}")
    raise typer.Exit(code)


@contextmanager
def db_session(check: bool = True) -> Iterator[Session]:
    """A transaction on the configured database; refuses an out-of-date schema; errors become messages."""
    # Imported here, not at the top: every CLI module imports this one, and alembic (db.migrate) would
    # otherwise load for `voicecap --help` and for commands that never touch the database.
    from db.migrate import SchemaOutOfDate, check_schema
    from db.session import get_engine, session_scope

    engine = get_engine()
    try:
        if check:
            check_schema(engine)
        with session_scope(engine) as session:
            yield session
    except SchemaOutOfDate as exc:
        fail(str(exc), code=2)
    except VoicecapError as exc:
        fail(exc.message)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    result = Table(title=title, header_style="bold")
    for column in columns:
        result.add_column(column)
    for row in rows:
        result.add_row(*[("" if v is None else str(v)) for v in row])
    return result
