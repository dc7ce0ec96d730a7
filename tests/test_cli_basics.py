"""The CLI as users run it: a real subprocess against SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from db.settings import Settings
from tests.support.cli import run_cli, run_json


def test_commands_refuse_an_unmigrated_database_and_say_what_to_run(settings: Settings) -> None:
    result = run_cli("project", "list", check=False)
    assert result.returncode == 2
    assert "voicecap db upgrade" in result.stderr


def test_db_upgrade_then_current(settings: Settings) -> None:
    assert "migrated" in run_cli("db", "upgrade").stdout
    assert "up to date" in run_cli("db", "upgrade").stdout
    current = run_json("db", "current")
    assert current["up_to_date"] is True


def test_project_create_list_show_with_questions_file(engine, tmp_path: Path) -> None:
    questions = tmp_path / "q.yaml"
    questions.write_text("questions:\n  - What animals are there?\n  - What colour is the sky?\n")
    created = run_json(
        "project",
        "create",
        "birds",
        "--questions",
        str(questions),
        "--min-seconds",
        "45",
        "--max-seconds",
        "90",
        "--per-image",
        "3",
        "--language",
        "en",
    )
    assert created["questions"] == ["What animals are there?", "What colour is the sky?"]
    assert created["per_image"] == 3
    run_cli("project", "create", "street")
    listed = run_json("project", "list")
    assert [p["name"] for p in listed["projects"]] == ["birds", "street"]
    shown = run_json("project", "show", "street")
    assert len(shown["questions"]) == 7 and "first glance" in shown["questions"][0]
    assert "What animals are there?" in run_cli("project", "show", "birds").stdout


def test_project_create_rejects_bad_input(engine, tmp_path: Path) -> None:
    run_cli("project", "create", "p1")
    duplicate = run_cli("project", "create", "p1", check=False)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    limits = run_cli("project", "create", "p2", "--min-seconds", "90", "--max-seconds", "60", check=False)
    assert limits.returncode == 1 and "must be below" in limits.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not valid JSON" in run_cli("project", "create", "p3", "--questions", str(bad), check=False).stderr
    assert "No project named" in run_cli("project", "show", "nope", check=False).stderr


def test_user_add_generates_or_reads_password_and_never_stores_it_clear(engine, session) -> None:
    from sqlalchemy import select

    from db.models import User

    generated = run_json("user", "add", "alice", "--role", "annotator")
    assert len(generated["password"]) >= 12
    given = run_json("user", "add", "bob", "--role", "lead", "--password-stdin", input="s3cret-pass\n")
    assert "password" not in given
    hashes = {u.name: u.password_hash for u in session.scalars(select(User))}
    assert hashes["alice"].startswith("$argon2") and generated["password"] not in hashes["alice"]
    assert "s3cret-pass" not in hashes["bob"]
    users = run_json("user", "list")["users"]
    assert [(u["name"], u["role"]) for u in users] == [("alice", "annotator"), ("bob", "lead")]
    run_cli("user", "disable", "alice")
    assert run_json("user", "list")["users"][0]["disabled"] is True


def test_user_add_rejects_bad_input(engine) -> None:
    run_cli("user", "add", "carol")
    assert "already exists" in run_cli("user", "add", "carol", check=False).stderr
    short = run_cli("user", "add", "dave", "--password-stdin", input="short\n", check=False)
    assert "at least 8" in short.stderr
    assert run_cli("user", "add", "erin", "--role", "boss", check=False).returncode != 0
    assert "No user named" in run_cli("user", "disable", "nobody", check=False).stderr


def test_every_command_has_help_with_an_example() -> None:
    import typer.main

    from annotate.cli.main import app

    group = typer.main.get_command(app)
    missing = []

    def walk(command, path):
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, [*path, name])
        elif "Example" not in (command.help or ""):
            missing.append(" ".join(path))

    walk(group, [])
    assert missing == []
