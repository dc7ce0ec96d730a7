"""Project modes and labels, on SQLite and PostgreSQL: the real CLI (`project create --mode --labels`,
show, list), the admin API, and labels per image from CSV and JSON Lines ingest manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annotate.services.ingest import ingest, items_from_source
from db.blobstore import BlobStore
from db.models import Image, Project, ProjectMode
from db.settings import Settings
from tests.conftest import EXAMPLES
from tests.support import factories
from tests.support.cli import run_cli, run_json
from tests.support.server import login

IMAGES = EXAMPLES / "images"


@pytest.mark.parametrize(
    ("file_name", "text"),
    [
        ("labels.txt", "deck chair\n  person \n\nText\ndeck   chair\n"),
        ("labels.json", '["deck chair", " person", "", "Text", "deck chair"]'),
        ("labels.yaml", "- deck chair\n- person\n- Text\n- '  deck chair'\n"),
    ],
)
def test_project_create_point_mode_reads_labels_from_text_json_or_yaml(
    engine: Engine, tmp_path: Path, file_name: str, text: str
) -> None:
    labels = tmp_path / file_name
    labels.write_text(text, encoding="utf-8")
    created = run_json("project", "create", "harbour", "--mode", "point", "--labels", str(labels))
    assert created["mode"] == "point" and created["labels"] == ["deck chair", "person", "Text"]
    shown = run_json("project", "show", "harbour")
    assert shown["mode"] == "point" and shown["labels"] == ["deck chair", "person", "Text"]
    text_out = run_cli("project", "show", "harbour").stdout
    assert "Mode point; labels: deck chair, person, Text" in text_out
    listed = run_cli("project", "list").stdout
    assert "point" in listed and "deck chair, person, Text" in listed


def test_project_modes_and_their_refusals_on_the_cli(engine: Engine, tmp_path: Path) -> None:
    assert run_json("project", "create", "talk")["mode"] == "describe"
    narrate = run_json("project", "create", "walk", "--mode", "narrate")
    assert narrate["mode"] == "narrate" and narrate["labels"] == []
    # A point project without labels of its own: its images must bring them (said on creation).
    bare = run_cli("project", "create", "bare", "--mode", "point")
    assert "every image must bring its own" in bare.stdout
    wrong = run_cli("project", "create", "p1", "--mode", "paint", check=False)
    assert wrong.returncode != 0 and "Unknown mode 'paint'" in wrong.stderr
    labels = tmp_path / "labels.txt"
    labels.write_text("boat\n")
    not_point = run_cli("project", "create", "p2", "--labels", str(labels), check=False)
    assert not_point.returncode != 0 and "Labels are for point projects" in not_point.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    assert (
        "holds no labels"
        in run_cli("project", "create", "p3", "--mode", "point", "--labels", str(empty), check=False).stderr
    )
    bad = tmp_path / "bad.json"
    bad.write_text('["boat", 3]')
    assert (
        "every label must be text"
        in run_cli("project", "create", "p4", "--mode", "point", "--labels", str(bad), check=False).stderr
    )
    missing = run_cli("project", "create", "p5", "--mode", "point", "--labels", "nope.txt", check=False)
    assert "Cannot read labels file" in missing.stderr
    names = [p["name"] for p in run_json("project", "list")["projects"]]
    assert names == ["bare", "talk", "walk"]


def test_the_admin_api_creates_and_edits_modes_and_labels(server, make_user, session: Session) -> None:
    make_user("lena", "lead")
    lead = login(server, "lena", "correct-horse")
    created = lead.post(
        "/api/admin/projects",
        json={"name": "Harbour", "mode": "point", "labels": [" deck chair", "person", "person", ""]},
    )
    assert created.status_code == 201, created.text
    project = created.json()
    assert project["mode"] == "point" and project["labels"] == ["deck chair", "person"]
    wrong = lead.post("/api/admin/projects", json={"name": "X", "mode": "paint"})
    assert wrong.status_code == 422
    labelled = lead.post("/api/admin/projects", json={"name": "Y", "labels": ["boat"]})
    assert labelled.status_code == 422 and labelled.json()["code"] == "labels_not_expected"
    edited = lead.patch(f"/api/admin/projects/{project['id']}", json={"labels": ["gull"]})
    assert edited.status_code == 200 and edited.json()["labels"] == ["gull"]
    # The mode may change until the project has takes; then it stays.
    narrate = lead.patch(f"/api/admin/projects/{project['id']}", json={"mode": "narrate", "labels": []})
    assert narrate.status_code == 200 and narrate.json()["mode"] == "narrate"
    ann = factories.add_user(session, "ann")
    image = factories.add_image(session, session.get_one(Project, project["id"]))
    factories.add_recording(session, image, ann)
    session.commit()
    locked = lead.patch(f"/api/admin/projects/{project['id']}", json={"mode": "describe"})
    assert locked.status_code == 409 and locked.json()["code"] == "project_mode_locked"
    assert lead.get(f"/api/admin/projects/{project['id']}").json()["mode"] == "narrate"


def ingest_manifest(engine: Engine, blobs: BlobStore, settings: Settings, project_id: int, manifest: Path):
    items = items_from_source(str(manifest), allow_outside=True)
    return ingest(engine, blobs, settings, project_id, items, workers=1)


def labels_by_name(session: Session, project_id: int) -> dict[str, list[str] | None]:
    session.expire_all()
    found = {
        Path(image.source).name: image.labels
        for image in session.scalars(select(Image).where(Image.project_id == project_id))
    }
    session.commit()
    return found


def test_csv_and_jsonl_manifests_give_images_their_own_labels(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, tmp_path: Path
) -> None:
    project = factories.add_project(session, "harbour", mode=ProjectMode.point, labels=["person"])
    session.commit()
    csv_manifest = tmp_path / "m.csv"
    csv_manifest.write_text(
        "path,labels,split\n"
        f"{IMAGES / 'rocket.jpg'},rocket | flame|rocket,train\n"
        f"{IMAGES / 'coins.jpg'},,val\n",
        encoding="utf-8",
    )
    summary = ingest_manifest(engine, blobs, settings, project.id, csv_manifest)
    assert summary.added == 2 and not summary.rejected
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"image": str(IMAGES / "astronaut.jpg"), "labels": ["helmet", " flag "]}),
                json.dumps({"image": str(IMAGES / "coffee.jpg"), "labels": "cup"}),  # a|b|c also reads
                json.dumps({"image": str(IMAGES / "chelsea_exif_rotated.jpg"), "labels": [1, 2]}),
                json.dumps({"image": str(IMAGES / "hubble_deep_field.jpg"), "labels": {"a": 1}}),
            ]
        )
        + "\n"
    )
    summary = ingest_manifest(engine, blobs, settings, project.id, jsonl)
    assert summary.added == 2
    assert [r.reason for r in summary.rejected] == [
        "manifest line 3: labels: every label must be text, not 1.",
        "manifest line 4: labels must be a list of strings (JSON Lines) or a|b|c (CSV)",
    ]
    assert labels_by_name(session, project.id) == {
        "rocket.jpg": ["rocket", "flame"],
        "coins.jpg": None,  # the project's labels
        "astronaut.jpg": ["helmet", "flag"],
        "coffee.jpg": ["cup"],
    }
    image = session.scalar(select(Image).where(Image.project_id == project.id, Image.labels.is_not(None)))
    assert "labels" not in image.meta  # labels are a column, not metadata
    session.commit()


def test_a_point_project_without_labels_takes_only_images_that_bring_theirs(
    engine: Engine, blobs: BlobStore, settings: Settings, session: Session, tmp_path: Path
) -> None:
    project = factories.add_project(session, "bare", mode=ProjectMode.point)
    session.commit()
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"path": str(IMAGES / "rocket.jpg"), "labels": ["rocket"]})
        + "\n"
        + json.dumps({"path": str(IMAGES / "coins.jpg")})
        + "\n"
    )
    summary = ingest_manifest(engine, blobs, settings, project.id, manifest)
    assert summary.added == 1
    [rejection] = summary.rejected
    assert Path(rejection.path).name == "coins.jpg" and rejection.reason.startswith("no labels:")
    assert labels_by_name(session, project.id) == {"rocket.jpg": ["rocket"]}
    # A folder brings no labels at all.
    folder = run_cli("ingest", "bare", str(IMAGES), "--json", check=False)
    assert json.loads(folder.stdout)["added"] == 0


def test_a_point_project_keeps_labels_while_an_image_has_none_of_its_own(
    server, make_user, session: Session
) -> None:
    make_user("lena", "lead")
    lead = login(server, "lena", "correct-horse")
    created = lead.post("/api/admin/projects", json={"name": "Pier", "mode": "point", "labels": ["gull"]})
    project_id = created.json()["id"]
    project = session.get_one(Project, project_id)
    own = factories.add_image(session, project)
    own.labels = ["boat"]
    plain = factories.add_image(session, project)
    session.commit()
    emptied = lead.patch(f"/api/admin/projects/{project_id}", json={"labels": []})
    assert emptied.status_code == 409 and emptied.json()["code"] == "labels_needed"
    assert f"image {plain.id}" in emptied.json()["message"]
    assert lead.get(f"/api/admin/projects/{project_id}").json()["labels"] == ["gull"]
    # Once every image brings its own labels, the project's may go.
    plain.labels = ["rope"]
    session.commit()
    emptied = lead.patch(f"/api/admin/projects/{project_id}", json={"labels": []})
    assert emptied.status_code == 200 and emptied.json()["labels"] == []
