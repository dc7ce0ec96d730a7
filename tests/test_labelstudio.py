"""Label Studio sync against a real Label Studio server (its own virtualenv, SQLite, a loopback port).

The server is found at $VOICECAP_TEST_LABEL_STUDIO (the `label-studio` executable), else
/opt/ls-venv/bin/label-studio (what .ci/install-label-studio.sh installs), else on PATH. Media go to Label
Studio as data: URLs, so the server needs nothing from this app. One server serves the whole module.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from annotate.errors import InvalidInput
from annotate.services import labelstudio
from annotate.services.export import ExportFilter, ExportOptions, export_dataset, iter_records
from db.models import Caption, CaptionKind, Review
from tests.support.cli import run_cli, run_json
from tests.support.databases import require
from tests.support.server import free_port
from tests.test_export import BASE, add_caption, all_rows, seed_export

TOKEN = "0123456789abcdef0123456789abcdef01234567"
START_SECONDS = 300  # first start migrates a fresh database: about a minute, more on a busy machine


def _executable() -> str | None:
    candidates = [os.environ.get("VOICECAP_TEST_LABEL_STUDIO", ""), "/opt/ls-venv/bin/label-studio"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("label-studio")


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Label Studio on a loopback port with a fresh SQLite data dir; yields its base URL."""
    executable = _executable()
    require(
        executable is not None,
        "Label Studio is not installed (bash .ci/install-label-studio.sh, or set VOICECAP_TEST_LABEL_STUDIO)",
    )
    assert executable is not None
    data_dir = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "DJANGO_DB": "sqlite",
    }
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [
            executable,
            "start",
            "--port",
            str(port),
            "--host",
            f"http://127.0.0.1:{port}",
            "--internal-host",
            "127.0.0.1",
            "--no-browser",
            "--username",
            "reviewer@example.com",
            "--password",
            "correct-horse-battery",
            "--user-token",
            TOKEN,
            "--enable-legacy-api-token",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(1)
        if not ready:
            tail = (data_dir / "server.log").read_bytes()[-3000:].decode(errors="replace")
            require(False, f"Label Studio did not start within {START_SECONDS} s:\n{tail}")
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


@pytest.fixture
def ls_client(label_studio: str) -> Any:
    """A client on a Label Studio with no projects (each test starts clean)."""
    client = labelstudio.connect(label_studio, TOKEN)
    for item in list(client.projects.list()):
        client.projects.delete(id=item.id)
    return client


def _tasks(client: Any, ls_project_id: int) -> list[Any]:
    return sorted(client.tasks.list(project=ls_project_id, fields="all"), key=lambda t: t.id)


def _submit(client: Any, task_id: int, text: str) -> Any:
    """What a reviewer's Submit in Label Studio's editor sends."""
    result = [{"from_name": "caption", "to_name": "image", "type": "textarea", "value": {"text": [text]}}]
    return client.annotations.create(id=task_id, result=result, ground_truth=False)


def test_push_prefills_captions_and_pull_stores_reviews(session, blobs, engine, ls_client, tmp_path) -> None:
    seeded = seed_export(session, blobs, extra_approved=2)
    project = seeded.project
    flt = ExportFilter(project_id=project.id, state="captioned")
    links = labelstudio.MediaLinks(blobs, "data")
    expected = {r.id: r.chosen for batch in iter_records(engine, flt) for r in batch if r.chosen}
    assert len(expected) == 8  # 5 approved + pending + 2 extra

    pushed = labelstudio.push(engine, project, flt, links, ls_client)
    assert pushed.created_project and pushed.tasks_created == 8 and pushed.predictions_added == 0
    made = ls_client.projects.get(id=pushed.ls_project_id)
    assert made.title == "voicecap: Harbour" and '<TextArea name="caption"' in made.label_config
    tasks = _tasks(ls_client, pushed.ls_project_id)
    assert sorted(t.data["voicecap_image_id"] for t in tasks) == sorted(expected)
    by_image = {t.data["voicecap_image_id"]: t for t in tasks}
    for image_id, caption in expected.items():
        task = by_image[image_id]
        assert [p.model_version for p in task.predictions] == [f"voicecap-caption-{caption.id}"]
        assert task.predictions[0].result[0]["value"]["text"] == [caption.text]
        assert task.data["voicecap_caption_id"] == caption.id
    image = seeded.images["approved"]
    prefix, payload = by_image[image.id].data["image"].split(",", 1)
    assert prefix == "data:image/png;base64" and base64.b64decode(payload) == blobs.read_bytes(image.blob_key)
    assert by_image[image.id].data["audio"].startswith("data:audio/webm;base64,")
    assert by_image[image.id].data["transcript"] == "a red boat in a harbour"

    # Pushing again changes nothing; a new caption for one image adds one prediction to its task.
    again = labelstudio.push(engine, project, flt, links, ls_client)
    assert (again.created_project, again.tasks_created, again.unchanged) == (False, 0, 8)
    pending_image = seeded.images["pending"]
    newer = add_caption(session, pending_image, "A white lighthouse at dusk.", when=BASE.replace(month=3))
    session.commit()
    updated = labelstudio.push(engine, project, flt, links, ls_client)
    assert (updated.tasks_created, updated.predictions_added, updated.unchanged) == (0, 1, 7)
    task = next(
        t for t in _tasks(ls_client, pushed.ls_project_id) if t.data["voicecap_image_id"] == pending_image.id
    )
    assert f"voicecap-caption-{newer.id}" in {p.model_version for p in task.predictions}

    # Reviewers submit in Label Studio: one accepts the caption, one rewrites it, one skips.
    accepted = by_image[seeded.images["extra0"].id]
    rewritten = by_image[seeded.images["approved"].id]
    skipped = by_image[seeded.images["edited"].id]
    accepted_text = accepted.predictions[0].result[0]["value"]["text"][0]
    _submit(ls_client, accepted.id, accepted_text)
    edit = _submit(ls_client, rewritten.id, "A red fishing boat moored in a small harbour.")
    ls_client.annotations.create(id=skipped.id, result=[], was_cancelled=True)

    pulled = labelstudio.pull(session, project, ls_client, seeded.lead)
    session.commit()
    assert (pulled.approved, pulled.edited, pulled.already, pulled.skipped) == (1, 1, 0, [])
    reviews = session.scalars(select(Review).where(Review.source == "labelstudio").order_by(Review.id)).all()
    assert sorted((r.decision.value, r.reviewer_id) for r in reviews) == [
        ("approve", seeded.lead.id),
        ("edit", seeded.lead.id),
    ]
    assert all(r.external_id and r.external_id.startswith(f"ls:{pushed.ls_project_id}:") for r in reviews)
    edited = session.scalar(select(Caption).where(Caption.parent_id == seeded.captions["approved"].id))
    assert edited is not None and edited.kind is CaptionKind.edited and edited.status == "approved"
    assert edited.text == "A red fishing boat moored in a small harbour."
    session.refresh(seeded.captions["approved"])
    assert seeded.captions["approved"].status == "superseded"

    # Pulling again applies nothing twice.
    twice = labelstudio.pull(session, project, ls_client, seeded.lead)
    session.commit()
    assert (twice.approved, twice.edited, twice.already) == (0, 0, 2)
    assert session.scalar(select(func.count()).select_from(Review).where(Review.source == "labelstudio")) == 2

    # The reviewer changes their mind in Label Studio: the change lands on the edited caption.
    ls_client.annotations.update(
        id=edit.id,
        result=[
            {
                "from_name": "caption",
                "to_name": "image",
                "type": "textarea",
                "value": {"text": ["A red boat."]},
            }
        ],
    )
    changed = labelstudio.pull(session, project, ls_client, seeded.lead)
    session.commit()
    assert (changed.edited, changed.already) == (1, 1)
    latest = session.scalar(select(Caption).where(Caption.parent_id == edited.id))
    assert latest is not None and latest.text == "A red boat." and latest.status == "approved"

    # And the export carries the reviewer's words.
    out = tmp_path / "export"
    export_dataset(engine, blobs, project, ExportOptions(filter=ExportFilter(project_id=project.id)), out)
    rows = {r["image_id"]: r for r in all_rows(out)}
    assert rows[seeded.images["approved"].id]["caption"] == "A red boat."
    assert rows[seeded.images["approved"].id]["review"]["decision"] == "edit"


def test_tasks_file_is_accepted_by_label_studio(session, blobs, ls_client, tmp_path) -> None:
    seed_export(session, blobs, extra_approved=1)
    path = tmp_path / "tasks.json"
    written = run_json("labelstudio", "tasks-file", "Harbour", "--out", str(path), "--media", "data")
    assert written == {"tasks": 7, "path": str(path)}
    tasks = json.loads(path.read_text(encoding="utf-8"))
    assert len(tasks) == 7 and not list(tmp_path.glob("*.tmp"))
    assert all(t["predictions"][0]["result"][0]["type"] == "textarea" for t in tasks)

    # The file, as is, is what Label Studio imports: every task and its prediction.
    config = run_cli("labelstudio", "config").stdout
    made = ls_client.projects.create(title="by hand", label_config=config)
    imported = ls_client.projects.import_tasks(id=made.id, request=tasks, return_task_ids=True)
    assert imported.task_count == 7 and imported.prediction_count == 7
    stored = _tasks(ls_client, made.id)
    assert sorted(t.data["voicecap_caption_id"] for t in stored) == sorted(
        t["data"]["voicecap_caption_id"] for t in tasks
    )
    assert all(len(t.predictions) == 1 for t in stored)


def test_cli_push_and_pull(session, blobs, label_studio, ls_client) -> None:
    seeded = seed_export(session, blobs, extra_approved=0)
    env = {"VOICECAP_LABELSTUDIO_URL": label_studio, "VOICECAP_LABELSTUDIO_API_KEY": TOKEN}
    pushed = run_json("labelstudio", "push", "Harbour", "--state", "approved", "--media", "data", env=env)
    assert pushed["created_project"] is True and pushed["tasks_created"] == 5
    task = next(
        t
        for t in _tasks(ls_client, pushed["ls_project_id"])
        if t.data["voicecap_image_id"] == seeded.images["merged"].id
    )
    _submit(ls_client, task.id, "A fishing net on the quay.")
    pulled = run_json("labelstudio", "pull", "Harbour", "--as", "lena", env=env)
    assert (pulled["approved"], pulled["edited"], pulled["skipped"]) == (0, 1, [])
    session.expire_all()
    edit = session.scalar(select(Caption).where(Caption.parent_id == seeded.captions["merged"].id))
    assert edit is not None and edit.text == "A fishing net on the quay."

    refused = run_cli("labelstudio", "pull", "Harbour", "--as", "annika", env=env, check=False)
    assert refused.returncode == 1 and "lead or admin" in refused.stderr
    wrong_token = {**env, "VOICECAP_LABELSTUDIO_API_KEY": "not-a-token"}
    denied = run_cli("labelstudio", "push", "Harbour", "--media", "data", env=wrong_token, check=False)
    assert denied.returncode == 1 and "Label Studio answered 401" in " ".join(denied.stderr.split())


def test_url_media_need_a_public_base_url(session, blobs, engine) -> None:
    seeded = seed_export(session, blobs, extra_approved=0)
    record = next(
        r
        for batch in iter_records(engine, ExportFilter(project_id=seeded.project.id))
        for r in batch
        if r.id == seeded.images["approved"].id
    )
    with pytest.raises(InvalidInput, match="VOICECAP_PUBLIC_BASE_URL"):
        labelstudio.task_for(record, seeded.project, labelstudio.MediaLinks(blobs, "url"))
    task = labelstudio.task_for(
        record, seeded.project, labelstudio.MediaLinks(blobs, "url", "http://vc.test:8000/")
    )
    assert task["data"]["image"] == f"http://vc.test:8000/api/images/{record.id}/original"
    assert (
        task["data"]["audio"]
        == f"http://vc.test:8000/api/recordings/{seeded.recordings['approved'].id}/audio"
    )
