"""The admin API over real HTTP on both databases: projects, image uploads via the ingest service, users."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
from sqlalchemy import select

from db.models import Image
from tests.support.review_seed import IMAGES, PASSWORD
from tests.support.server import login


@pytest.fixture
def lead(server, make_user) -> httpx.Client:
    make_user("lena", "lead")
    make_user("ann", "annotator")
    return login(server, "lena", PASSWORD)


def test_create_and_edit_a_project(lead) -> None:
    created = lead.post(
        "/api/admin/projects",
        json={
            "name": "Harbour",
            "instructions": "Describe the boats.",
            "questions": ["How many boats?", "  ", "What colour is the water?"],
            "min_seconds": 20,
            "max_seconds": 90,
            "per_image": 3,
        },
    )
    assert created.status_code == 201
    project = created.json()
    assert project["questions"] == ["How many boats?", "What colour is the water?"]
    assert (project["per_image"], project["images"]) == (3, 0)
    again = lead.post("/api/admin/projects", json={"name": "Harbour"})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    bad = lead.patch(f"/api/admin/projects/{project['id']}", json={"min_seconds": 100})
    assert bad.status_code == 422 and "must be below" in bad.json()["message"]
    edited = lead.patch(
        f"/api/admin/projects/{project['id']}", json={"instructions": "Describe everything.", "per_image": 1}
    ).json()
    assert (edited["instructions"], edited["per_image"], edited["max_seconds"]) == (
        "Describe everything.",
        1,
        90,
    )
    listed = lead.get("/api/admin/projects").json()["projects"]
    assert [p["name"] for p in listed] == ["Harbour"]
    assert lead.get("/api/admin/projects/999").status_code == 404


def test_upload_an_image_and_a_zip_through_the_ingest_service(lead, session) -> None:
    project = lead.post("/api/admin/projects", json={"name": "Uploads"}).json()
    url = f"/api/admin/projects/{project['id']}/images"
    coffee = (IMAGES / "coffee.jpg").read_bytes()
    one = lead.post(url, params={"filename": "coffee.jpg"}, content=coffee)
    assert one.status_code == 200, one.text
    assert one.json() == {"added": 1, "duplicate": 0, "rejected": [], "file": "coffee.jpg"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("set/coffee.jpg", coffee)  # already there
        archive.writestr("set/rocket.jpg", (IMAGES / "rocket.jpg").read_bytes())
        archive.writestr("set/broken.png", b"\x89PNG\r\n\x1a\n not really")
    result = lead.post(url, params={"filename": "../../batch.zip"}, content=buffer.getvalue()).json()
    assert (result["added"], result["duplicate"], result["file"]) == (1, 1, "batch.zip")
    assert [r["path"] for r in result["rejected"]] == ["batch.zip!/set/broken.png"]
    assert result["rejected"][0]["reason"]
    sources = sorted(session.scalars(select(Image.source).where(Image.project_id == project["id"])))
    assert sources == ["batch.zip!/set/rocket.jpg", "coffee.jpg"]
    assert lead.post(url, params={"filename": "empty.jpg"}, content=b"").json()["code"] == "invalid_input"
    not_zip = lead.post(url, params={"filename": "x.zip"}, content=b"plain text")
    assert not_zip.status_code == 422 and "zip" in not_zip.json()["message"]
    missing = lead.post("/api/admin/projects/999/images", params={"filename": "a.jpg"}, content=coffee)
    assert missing.status_code == 404


def test_upload_over_the_limit_is_refused(lead, monkeypatch) -> None:
    project = lead.post("/api/admin/projects", json={"name": "Small"}).json()
    from annotate.api.routes import admin

    monkeypatch.setattr(admin, "MAX_UPLOAD_BYTES", 1000)
    response = lead.post(
        f"/api/admin/projects/{project['id']}/images", params={"filename": "big.zip"}, content=b"z" * 5000
    )
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_leads_manage_annotators(server, lead) -> None:
    created = lead.post("/api/admin/users", json={"name": "zoe"})
    assert created.status_code == 201
    password = created.json()["password"]
    assert created.json()["role"] == "annotator" and len(password) >= 12
    zoe = login(server, "zoe", password)
    assert zoe.get("/api/me").json()["name"] == "zoe"
    assert lead.post("/api/admin/users/zoe/disable").json()["disabled"] is True
    assert zoe.get("/api/me").status_code == 401
    lead.post("/api/admin/users/zoe/enable")
    reset = lead.post("/api/admin/users/zoe/reset-password").json()["password"]
    assert reset != password and login(server, "zoe", reset).get("/api/me").status_code == 200
    chosen = lead.post("/api/admin/users/zoe/reset-password", json={"password": "a-chosen-one"})
    assert chosen.status_code == 200 and "password" not in chosen.json()
    short = lead.post("/api/admin/users/zoe/reset-password", json={"password": "short"})
    assert short.status_code == 422
    names = [u["name"] for u in lead.get("/api/admin/users").json()["users"]]
    assert names == ["ann", "lena", "zoe"]
    duplicate = lead.post("/api/admin/users", json={"name": "zoe"})
    assert duplicate.status_code == 409


def test_only_admins_manage_leads(server, lead, make_user) -> None:
    make_user("root", "admin")
    refused = lead.post("/api/admin/users", json={"name": "lou", "role": "lead"})
    assert refused.status_code == 403 and refused.json()["code"] == "wrong_role"
    assert lead.post("/api/admin/users/root/disable").json()["code"] == "wrong_role"
    assert lead.post("/api/admin/users/lena/disable").json()["code"] == "wrong_role"
    admin = login(server, "root", PASSWORD)
    made = admin.post("/api/admin/users", json={"name": "lou", "role": "lead", "password": "lou-password"})
    assert made.status_code == 201 and "password" not in made.json()
    assert admin.post("/api/admin/users/root/disable").json()["code"] == "invalid_input"
    assert admin.post("/api/admin/users/lena/disable").json()["disabled"] is True
