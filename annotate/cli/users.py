"""`voicecap user …`: annotators, leads and admins."""

from __future__ import annotations

import sys

import typer

from annotate.cli.common import JSON_OPTION, console, db_session, fail, print_json, table
from annotate.services import users as service
from db.models import Role

user_app = typer.Typer(help="Manage annotators, leads and admins.", no_args_is_help=True)


@user_app.command("add")
def add(
    name: str = typer.Argument(..., help="Login name: letters, digits and . _ @ - (no spaces)."),
    role: Role = typer.Option(Role.annotator, "--role", help="annotator, lead or admin."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input instead of generating one."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a user. Without --password-stdin a password is generated and printed once.

    Examples: `voicecap user add alice --role annotator`;
    `echo 's3cret-pass' | voicecap user add bob --role lead --password-stdin`
    """
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("--password-stdin given but standard input was empty.")
    with db_session() as session:
        created = service.add_user(session, name, role, password)
        result = {"name": created.user.name, "role": created.user.role.value}
    if created.generated:
        result["password"] = created.password
    if as_json:
        print_json(result)
        return
    console.print(f"Added {result['role']} [bold]{result['name']}[/].")
    if created.generated:
        console.print(f"Password (shown once): [bold]{created.password}[/]")


@user_app.command("list")
def list_command(as_json: bool = JSON_OPTION) -> None:
    """List users with their roles.

    Example: `voicecap user list --json`
    """
    with db_session() as session:
        rows = [
            {
                "name": u.name,
                "role": u.role.value,
                "disabled": u.disabled,
                "created_at": u.created_at.isoformat(),
            }
            for u in service.list_users(session)
        ]
    if as_json:
        print_json({"users": rows})
        return
    console.print(
        table(
            "Users",
            ["name", "role", "disabled", "created"],
            [[r["name"], r["role"], "yes" if r["disabled"] else "", r["created_at"][:19]] for r in rows],
        )
    )


@user_app.command("disable")
def disable(name: str = typer.Argument(..., help="The user to disable.")) -> None:
    """Disable a user: they can no longer log in; their work is kept.

    Example: `voicecap user disable alice`
    """
    with db_session() as session:
        service.set_disabled(session, name, True)
    console.print(f"Disabled {name}.")


@user_app.command("enable")
def enable(name: str = typer.Argument(..., help="The user to enable again.")) -> None:
    """Enable a disabled user.

    Example: `voicecap user enable alice`
    """
    with db_session() as session:
        service.set_disabled(session, name, False)
    console.print(f"Enabled {name}.")


@user_app.command("reset-password")
def reset_password(
    name: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from stdin."),
) -> None:
    """Set a new password (generated and printed once unless given on stdin).

    Example: `voicecap user reset-password alice`
    """
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with db_session() as session:
        result = service.reset_password(session, name, password)
    if result.generated:
        console.print(f"New password for {name} (shown once): [bold]{result.password}[/]")
    else:
        console.print(f"Password for {name} changed.")


@user_app.command("logout")
def logout(name: str = typer.Argument(..., help="The user to log out on every device.")) -> None:
    """End every session of a user at once (their next request asks them to log in again).

    Example: `voicecap user logout alice`
    """
    with db_session() as session:
        ended = service.log_out_everywhere(session, name)
    console.print(f"Logged {name} out everywhere ({ended} session{'s' if ended != 1 else ''} ended).")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
