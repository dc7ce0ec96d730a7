"""A project's interface language (the annotator page's strings) and caption language, set from the CLI
and the admin API, checked against the shipped catalogs, and handed to the task page by the task API,
on SQLite and PostgreSQL over real HTTP and the real CLI."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from db.models import Project
from tests.support.cli import run_cli, run_json
from tests.support.review_seed import PASSWORD
from tests.support.server import login
from tests.test_assignments import add_images


@pytest.fixture
def lead(server, make_user) -> httpx.Client:
    make_user("lena", "lead")
    return login(server, "lena", PASSWORD)


def test_the_cli_sets_shows_and_refuses_languages(settings, session) -> None:
    run_cli("db", "upgrade")
    made = run_json(
        "project",
        "create",
        "souk",
        "--language",
        "ar",
        "--interface-language",
        "ar",
        "--caption-language",
        "en",
    )
    assert (made["interface_language"], made["caption_language"]) == ("ar", "en")
    shown = run_cli("project", "show", "souk").stdout
    assert "Interface language ar, captions in en" in shown
    plain = run_json("project", "create", "plain")
    assert (plain["interface_language"], plain["caption_language"]) == ("en", None)
    assert "captions in the language spoken" in run_cli("project", "show", "plain").stdout

    bad = run_cli("project", "create", "wrong", "--interface-language", "fr", check=False)
    assert bad.returncode != 0
    assert "No interface catalog for 'fr'; available: ar, en" in bad.stdout + bad.stderr
    worse = run_cli("project", "create", "wrong", "--caption-language", "xx", check=False)
    assert worse.returncode != 0 and "Unknown caption language 'xx'" in worse.stdout + worse.stderr
    assert session.scalar(select(func.count()).select_from(Project).where(Project.name == "wrong")) == 0


def test_the_admin_api_sets_and_clears_languages(lead, session) -> None:
    created = lead.post(
        "/api/admin/projects", json={"name": "souk", "interface_language": "ar", "caption_language": "en"}
    )
    assert created.status_code == 201, created.text
    project = created.json()
    assert (project["interface_language"], project["caption_language"]) == ("ar", "en")

    refused = lead.post("/api/admin/projects", json={"name": "other", "interface_language": "de"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "unknown_interface_language"
    assert "available: ar, en" in refused.json()["message"]
    assert lead.get("/api/admin/projects").json()["projects"][0]["name"] == "souk"  # nothing else made

    url = f"/api/admin/projects/{project['id']}"
    cleared = lead.patch(url, json={"caption_language": "", "interface_language": "en"}).json()
    assert (cleared["interface_language"], cleared["caption_language"]) == ("en", None)
    wrong = lead.patch(url, json={"caption_language": "elvish"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "unknown_caption_language"
    assert lead.get(url).json()["caption_language"] is None  # the refused change stored nothing


def test_the_task_api_names_the_pages_language_and_direction(server, session, blobs, make_user) -> None:
    arabic = Project(name="souk", interface_language="ar", min_seconds=2, max_seconds=20)
    english = Project(name="harbour", min_seconds=2, max_seconds=20)
    session.add_all([arabic, english])
    session.flush()
    add_images(session, blobs, arabic, 1)
    session.commit()
    make_user("ann")
    ann = login(server, "ann", PASSWORD)

    answer = ann.post("/api/tasks/next", json={}).json()
    assert answer["task"]["project"]["name"] == "souk"
    assert (answer["interface_language"], answer["direction"]) == ("ar", "rtl")
    assignment = answer["task"]["assignment_id"]
    assert ann.post(f"/api/tasks/{assignment}/skip", json={"reason": "image_broken"}).status_code == 200

    # Nothing left: the page still speaks the language of the project ann last worked in.
    done = ann.post("/api/tasks/next", json={}).json()
    assert done["task"] is None and (done["interface_language"], done["direction"]) == ("ar", "rtl")
    asked = ann.post("/api/tasks/next", json={"project_id": english.id}).json()
    assert (asked["interface_language"], asked["direction"]) == ("en", "ltr")
