"""Label Studio sync against a real Label Studio server (its own virtualenv, SQLite, a loopback port).

The server is found at $VOICECAP_TEST_LABEL_STUDIO (the `label-studio` executable), else
/opt/ls-venv/bin/label-studio (what .ci/install-label-studio.sh installs), else on PATH. Media go to Label
Studio as signed links to this app; the API tests only check them, the editor test (Chromium) loads them
from a live voicecap. One server serves the whole module.
"""

from __future__ import annotations

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
from annotate.services.media_links import MediaLinks
from db.models import Caption, CaptionKind, PointSet, ProjectMode, RecordingStatus, Review
from tests.support import factories
from tests.support.cli import run_cli, run_json
from tests.support.databases import require
from tests.support.server import free_port, live_server
from tests.test_export import BASE, SPEECH, add_caption, add_image, all_rows, png_bytes, seed_export

TOKEN = "0123456789abcdef0123456789abcdef01234567"
VOICECAP = "http://vc.test:8000"  # where Label Studio's browser would reach voicecap (API tests only)
CHROMIUM = "/usr/bin/chromium"
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


def _submit(client: Any, task_id: int, text: str, decision: str | None = None) -> Any:
    """What a reviewer's Submit in Label Studio's editor sends."""
    result = [{"from_name": "caption", "to_name": "image", "type": "textarea", "value": {"text": [text]}}]
    if decision is not None:
        choice = {"choices": [decision]}
        result.append({"from_name": "decision", "to_name": "image", "type": "choices", "value": choice})
    return client.annotations.create(id=task_id, result=result, ground_truth=False)


def test_push_prefills_captions_and_pull_stores_reviews(session, blobs, engine, ls_client, tmp_path) -> None:
    seeded = seed_export(session, blobs, extra_approved=2)
    project = seeded.project
    flt = ExportFilter(project_id=project.id, state="captioned")
    links = MediaLinks.lasting(VOICECAP, "test-secret-key", days=1)
    expected = {r.id: r.chosen for batch in iter_records(engine, flt) for r in batch if r.chosen}
    assert len(expected) == 8  # 5 approved + pending + 2 extra

    pushed = labelstudio.push(engine, project, flt, links, ls_client)
    assert pushed.created_project and pushed.tasks_created == 8 and pushed.predictions_added == 0
    made = ls_client.projects.get(id=pushed.ls_project_id)
    assert made.title == "voicecap: Harbour" and '<TextArea name="caption"' in made.label_config
    # One model_version on the project and every prediction: Label Studio pre-fills every task.
    assert made.model_version == labelstudio.MODEL_VERSION
    tasks = _tasks(ls_client, pushed.ls_project_id)
    assert sorted(t.data["voicecap_image_id"] for t in tasks) == sorted(expected)
    by_image = {t.data["voicecap_image_id"]: t for t in tasks}
    for image_id, caption in expected.items():
        task = by_image[image_id]
        assert [p.model_version for p in task.predictions] == [labelstudio.MODEL_VERSION]
        assert task.predictions[0].result[0]["value"]["text"] == [caption.text]
        assert task.data["voicecap_caption_id"] == caption.id
        # Signed links to voicecap, never data: URLs.
        assert task.data["image"].startswith(f"{VOICECAP}/api/media/")
        assert task.data["audio"].startswith(f"{VOICECAP}/api/media/")
    image = seeded.images["approved"]
    assert by_image[image.id].data["transcript"] == [
        {"author": "Recording 1", "text": "a red boat in a harbour", "start": 0.0, "end": 2.5}
    ]
    # Every recording of an image, on one timeline: the second starts where the first (61.5 s) ends.
    merged = by_image[seeded.images["merged"].id].data["transcript"]
    assert [(p["author"], p["text"], p["start"]) for p in merged] == [
        ("Recording 1", "a fishing net on the quay", 0.0),
        ("Recording 2", "green net and orange floats", 61.5),
    ]

    # Pushing again changes nothing; a new caption for one image replaces its task's prediction.
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
    assert [p.result[0]["value"]["text"] for p in task.predictions] == [["A white lighthouse at dusk."]]
    assert task.data["voicecap_caption_id"] == newer.id

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
    assert (pulled.approved, pulled.edited, pulled.already) == (1, 1, 0), pulled.skipped
    # The skip is reported, not applied.
    assert len(pulled.skipped) == 1 and pulled.skipped[0].startswith(f"task {skipped.id} annotation ")
    assert pulled.skipped[0].endswith(": skipped in Label Studio, no decision")
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
    assert (twice.approved, twice.edited, twice.already, len(twice.skipped)) == (0, 0, 2, 1)
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
    env = {"VOICECAP_PUBLIC_BASE_URL": VOICECAP}
    written = run_json("labelstudio", "tasks-file", "Harbour", "--out", str(path), env=env)
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
    env = {
        "VOICECAP_LABELSTUDIO_URL": label_studio,
        "VOICECAP_LABELSTUDIO_API_KEY": TOKEN,
        "VOICECAP_PUBLIC_BASE_URL": VOICECAP,
    }
    pushed = run_json("labelstudio", "push", "Harbour", "--state", "approved", env=env)
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
    denied = run_cli("labelstudio", "push", "Harbour", env=wrong_token, check=False)
    assert denied.returncode == 1 and "Label Studio answered 401" in " ".join(denied.stderr.split())


def test_settings_are_checked_before_a_project_is_created(session, blobs, label_studio, ls_client) -> None:
    seed_export(session, blobs, extra_approved=0)
    env = {"VOICECAP_LABELSTUDIO_URL": label_studio, "VOICECAP_LABELSTUDIO_API_KEY": TOKEN}
    # No public base URL: Label Studio could load no media. Refused, and no project was made.
    refused = run_cli(
        "labelstudio", "push", "Harbour", env={**env, "VOICECAP_PUBLIC_BASE_URL": ""}, check=False
    )
    assert refused.returncode == 1 and "VOICECAP_PUBLIC_BASE_URL" in refused.stderr
    # data: URLs are gone: Label Studio's `?lsref=1` broke audio, and they bloated its database.
    data = run_cli(
        "labelstudio",
        "push",
        "Harbour",
        "--media",
        "data",
        env={**env, "VOICECAP_PUBLIC_BASE_URL": VOICECAP},
        check=False,
    )
    assert data.returncode == 1 and "lsref" in " ".join(data.stderr.split())
    assert list(ls_client.projects.list()) == []
    with pytest.raises(InvalidInput, match="VOICECAP_PUBLIC_BASE_URL"):
        labelstudio.check_links(None)


def test_a_failed_push_leaves_no_empty_project(session, blobs, engine, ls_client) -> None:
    seeded = seed_export(session, blobs, extra_approved=0)
    flt = ExportFilter(project_id=seeded.project.id, state="captioned")
    links = MediaLinks.lasting(VOICECAP, "test-secret-key", days=1)
    real_import = ls_client.projects.import_tasks

    def refuse(**kwargs: Any) -> Any:  # Label Studio refusing the import, as it would a too large request
        raise RuntimeError("import refused")

    ls_client.projects.import_tasks = refuse
    with pytest.raises(RuntimeError, match="import refused"):
        labelstudio.push(engine, seeded.project, flt, links, ls_client)
    assert list(ls_client.projects.list()) == []
    ls_client.projects.import_tasks = real_import
    assert labelstudio.push(engine, seeded.project, flt, links, ls_client).tasks_created == 6


def test_reject_and_send_back_choices_are_applied_on_pull(session, blobs, engine, ls_client) -> None:
    seeded = seed_export(session, blobs, extra_approved=2)
    flt = ExportFilter(project_id=seeded.project.id, state="captioned")
    links = MediaLinks.lasting(VOICECAP, "test-secret-key", days=1)
    pushed = labelstudio.push(engine, seeded.project, flt, links, ls_client)
    by_image = {t.data["voicecap_image_id"]: t for t in _tasks(ls_client, pushed.ls_project_id)}
    reject = by_image[seeded.images["extra0"].id]
    send_back = by_image[seeded.images["extra1"].id]
    unknown = by_image[seeded.images["approved"].id]
    _submit(ls_client, reject.id, "whatever", decision="reject")
    _submit(ls_client, send_back.id, "whatever", decision="send back: re-clean")
    _submit(ls_client, unknown.id, "A red boat.", decision="maybe")
    pulled = labelstudio.pull(session, seeded.project, ls_client, seeded.lead)
    session.commit()
    assert (pulled.rejected, pulled.sent_back, pulled.approved, pulled.edited) == (1, 1, 0, 0)
    assert len(pulled.skipped) == 1 and "unknown decision 'maybe'" in pulled.skipped[0]
    decisions = {
        r.caption_id: r.decision.value
        for r in session.scalars(select(Review).where(Review.source == "labelstudio")).all()
    }
    assert decisions == {
        reject.data["voicecap_caption_id"]: "reject",
        send_back.data["voicecap_caption_id"]: "reclean",
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(
        Path(CHROMIUM).exists() or shutil.which("chromium") is not None, f"Chromium is missing at {CHROMIUM}"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


def _seed_spoken(session, blobs) -> dict[int, str]:
    """Two images with captions: one described by two annotators (two WAV takes), one by one."""
    project = factories.add_project(session, "Harbour", min_seconds=5.0, max_seconds=120.0)
    factories.add_user(session, "lena", "lead", "correct-horse")  # pulls as this lead
    people = [factories.add_user(session, n, "annotator", "correct-horse") for n in ("annika", "bert")]
    captions: dict[int, str] = {}
    for index, takes in ((1, 2), (2, 1)):
        image = add_image(session, blobs, project, index)
        for person in people[:takes]:
            recording = factories.add_recording(
                session,
                image,
                person,
                blobs=blobs,
                audio=SPEECH / "boats.wav",
                duration_seconds=12.51,
                status=RecordingStatus.captioned,
            )
            transcript = factories.add_transcript(
                session,
                recording,
                "Three red boats on a calm lake.",
                segments=[{"start": 0.0, "end": 4.0, "text": "Three red boats on a calm lake."}],
            )
        text = f"Scene {index}: three red boats on a calm lake."
        captions[image.id] = add_caption(session, image, text, transcript=transcript).text
    session.commit()
    return captions


def _open_task(page: Any, label_studio: str, ls_project_id: int, task_id: int) -> None:
    page.goto(f"{label_studio}/projects/{ls_project_id}/data?task={task_id}")
    page.wait_for_selector(".lsf-main-view, [class*='main-view']", timeout=60_000)


def test_the_editor_shows_image_audio_and_caption_and_an_edit_comes_back(
    session, blobs, settings, label_studio, ls_client, browser, tmp_path
) -> None:
    from annotate.api.app import create_app

    captions = _seed_spoken(session, blobs)
    app = create_app(settings.model_copy(update={"labelstudio_url": label_studio}))
    with live_server(app) as voicecap:
        env = {
            "VOICECAP_LABELSTUDIO_URL": label_studio,
            "VOICECAP_LABELSTUDIO_API_KEY": TOKEN,
            "VOICECAP_PUBLIC_BASE_URL": voicecap,
        }
        pushed = run_json("labelstudio", "push", "Harbour", "--state", "captioned", env=env)
        tasks = {t.data["voicecap_image_id"]: t for t in _tasks(ls_client, pushed["ls_project_id"])}
        assert set(tasks) == set(captions)

        context = browser.new_context(viewport={"width": 1500, "height": 1100})
        page = context.new_page()
        media: list[tuple[str, int, str | None]] = []
        page.on(
            "response",
            lambda r: (
                media.append((r.url, r.status, r.headers.get("access-control-allow-origin")))
                if "/api/media/" in r.url
                else None
            ),
        )
        page.goto(f"{label_studio}/user/login")
        page.fill("input[name=email]", "reviewer@example.com")
        page.fill("input[name=password]", "correct-horse-battery")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)
        try:
            for image_id, caption in captions.items():
                task = tasks[image_id]
                _open_task(page, label_studio, pushed["ls_project_id"], task.id)
                # The image loaded (not a broken image), from a signed voicecap link.
                page.wait_for_function(
                    "() => [...document.images].some(i => i.src.includes('/api/media/') && i.complete"
                    " && i.naturalWidth > 0)",
                    timeout=60_000,
                )
                # The audio can play: the element has data to play (readyState >= 2).
                page.wait_for_function(
                    "() => [...document.querySelectorAll('audio')].some(a => a.readyState >= 2)",
                    timeout=60_000,
                )
                # The pre-filled caption shows, and so does the transcript.
                page.get_by_text(caption, exact=False).first.wait_for(timeout=30_000)
                page.get_by_text("Three red boats on a calm lake.").first.wait_for(timeout=30_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "editor.png"), full_page=True)
            (tmp_path / "editor.html").write_text(page.content())
            raise AssertionError(f"media responses: {media}; see {tmp_path}") from None
        assert media and all(status in (200, 206) for _url, status, _cors in media), media
        assert all(cors == label_studio for _url, _status, cors in media), media

        # The reviewer edits the first caption in the editor, approves and submits; pull brings it back.
        image_id = next(iter(captions))
        _open_task(page, label_studio, pushed["ls_project_id"], tasks[image_id].id)
        page.get_by_text(captions[image_id]).first.wait_for(timeout=60_000)
        page.locator("[data-testid=htx-textbox-content]").first.hover()
        page.locator("[data-testid=htx-textbox-edit-button]").first.click()
        box = page.locator("[data-testid=textarea-region] textarea").first
        box.fill("Three red boats, edited in Label Studio.")
        box.press("Enter")
        page.get_by_text("approve").first.click()
        page.get_by_role("button", name="Submit").click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ls_client.annotations.list(id=tasks[image_id].id):
            time.sleep(0.5)
        context.close()
        pulled = run_json("labelstudio", "pull", "Harbour", "--as", "lena", env=env)
    assert (pulled["edited"], pulled["approved"], pulled["skipped"]) == (1, 0, []), pulled
    session.expire_all()
    latest = session.scalar(
        select(Caption).where(Caption.image_id == image_id, Caption.kind == CaptionKind.edited)
    )
    assert latest is not None and latest.text == "Three red boats, edited in Label Studio."
    assert latest.status == "approved"


def _seed_points(session, blobs) -> tuple[Any, Any, Any]:
    """A point project (deck chair, boat, person) with one captioned take and its points; committed.
    Returns the project, the take and the lead who pulls."""
    project = factories.add_project(session, "Deck", min_seconds=5.0, max_seconds=120.0)
    project.mode, project.labels = ProjectMode.point, ["deck chair", "boat", "person"]
    lead = factories.add_user(session, "lena", "lead", "correct-horse")
    annotator = factories.add_user(session, "annika", "annotator", "correct-horse")
    image = factories.add_image(
        session,
        project,
        blobs=blobs,
        data=png_bytes(7, (640, 480)),
        suffix=".png",
        width=640,
        height=480,
        format="PNG",
    )
    take = factories.add_recording(
        session,
        image,
        annotator,
        blobs=blobs,
        audio=SPEECH / "boats.wav",
        duration_seconds=12.51,
        status=RecordingStatus.captioned,
    )
    transcript = factories.add_transcript(session, take, "Two deck chairs and a boat.")
    add_caption(session, image, "Two deck chairs and a boat.", transcript=transcript)
    P = factories.point_values
    factories.add_point_set(
        session,
        take,
        [P(0.25, 0.5, 1.0, "deck chair"), P(0.6, 0.3, 2.0, "deck chair"), P(0.8, 0.75, 3.0, "boat")],
        absent_labels=["person"],
    )
    session.commit()
    return project, take, lead


def _versions(session, take) -> list[PointSet]:
    session.expire_all()
    return list(
        session.scalars(select(PointSet).where(PointSet.recording_id == take.id).order_by(PointSet.version))
    )


def test_points_go_as_keypoints_and_corrections_come_back_as_a_new_version(
    session, blobs, engine, ls_client
) -> None:
    project, take, lead = _seed_points(session, blobs)
    flt = ExportFilter(project_id=project.id, state="captioned")
    links = MediaLinks.lasting(VOICECAP, "test-secret-key", days=1)
    pushed = labelstudio.push(engine, project, flt, links, ls_client)
    config = ls_client.projects.get(id=pushed.ls_project_id).label_config
    assert '<KeyPointLabels name="points" toName="image"' in config
    for label in ("deck chair", "boat", "person"):
        assert f'<Label value="{label}"/>' in config
    (task,) = _tasks(ls_client, pushed.ls_project_id)
    keypoints = [r for r in task.predictions[0].result if r["type"] == "keypointlabels"]
    assert [(k["id"], k["value"]["x"], k["value"]["y"], k["value"]["keypointlabels"]) for k in keypoints] == [
        (f"vc{take.id}p0", 25.0, 50.0, ["deck chair"]),
        (f"vc{take.id}p1", 60.0, 30.0, ["deck chair"]),
        (f"vc{take.id}p2", 80.0, 75.0, ["boat"]),
    ]
    assert {(k["original_width"], k["original_height"]) for k in keypoints} == {(640, 480)}

    # The reviewer submits the points as they came: no new version.
    result = [dict(r) for r in task.predictions[0].result]
    ls_client.annotations.create(id=task.id, result=result, ground_truth=False)
    same = labelstudio.pull(session, project, ls_client, lead)
    session.commit()
    assert (same.approved, same.point_sets) == (1, 0)
    assert [v.version for v in _versions(session, take)] == [1]

    # Another reviewer moves a deck chair and points at a person: version 2, by the pulling lead.
    moved = [dict(r, value=dict(r["value"])) for r in result]
    moved[2]["value"].update(x=40.0, y=20.0)
    added = {
        "id": "abc123",
        "from_name": "points",
        "to_name": "image",
        "type": "keypointlabels",
        "original_width": 640,
        "original_height": 480,
        "value": {"x": 10.0, "y": 90.0, "width": 0.75, "keypointlabels": ["person"]},
    }
    ls_client.annotations.create(id=task.id, result=[*moved, added], ground_truth=False)
    changed = labelstudio.pull(session, project, ls_client, lead)
    session.commit()
    assert changed.point_sets == 1
    first, second = _versions(session, take)
    assert (second.version, second.created_by, second.note) == (2, lead.id, "label studio")
    assert second.points == [
        {"x": 0.25, "y": 0.5, "t": 1.0, "label": "deck chair"},
        {"x": 0.4, "y": 0.2, "t": 2.0, "label": "deck chair"},  # moved: keeps its time
        {"x": 0.8, "y": 0.75, "t": 3.0, "label": "boat"},
        {"x": 0.1, "y": 0.9, "t": None, "label": "person"},  # added in Label Studio: no time
    ]
    assert second.absent_labels == [] and first.absent_labels == ["person"]  # the history stays

    # Pulling again stores nothing; pushing again replaces the task's prediction with the new points.
    again = labelstudio.pull(session, project, ls_client, lead)
    session.commit()
    assert again.point_sets == 0 and len(_versions(session, take)) == 2
    repushed = labelstudio.push(engine, project, flt, links, ls_client)
    assert (repushed.tasks_created, repushed.predictions_added) == (0, 1)
    (task,) = _tasks(ls_client, pushed.ls_project_id)
    assert [r["value"]["keypointlabels"] for r in task.predictions[0].result[1:]] == [
        ["deck chair"],
        ["deck chair"],
        ["boat"],
        ["person"],
    ]


def test_the_editor_shows_the_keypoints_and_a_moved_one_comes_back(
    session, blobs, settings, label_studio, ls_client, browser, tmp_path
) -> None:
    from annotate.api.app import create_app

    _project, take, lead = _seed_points(session, blobs)
    app = create_app(settings.model_copy(update={"labelstudio_url": label_studio}))
    with live_server(app) as voicecap:
        env = {
            "VOICECAP_LABELSTUDIO_URL": label_studio,
            "VOICECAP_LABELSTUDIO_API_KEY": TOKEN,
            "VOICECAP_PUBLIC_BASE_URL": voicecap,
        }
        pushed = run_json("labelstudio", "push", "Deck", "--state", "captioned", env=env)
        (task,) = _tasks(ls_client, pushed["ls_project_id"])
        context = browser.new_context(viewport={"width": 1500, "height": 1100})
        page = context.new_page()
        page.goto(f"{label_studio}/user/login")
        page.fill("input[name=email]", "reviewer@example.com")
        page.fill("input[name=password]", "correct-horse-battery")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)
        shot = tmp_path / "keypoints.png"
        try:
            _open_task(page, label_studio, pushed["ls_project_id"], task.id)
            page.wait_for_function(
                "() => [...document.images].some(i => i.src.includes('/api/media/') && i.complete"
                " && i.naturalWidth > 0)",
                timeout=60_000,
            )
            # The three keypoints are regions of the annotation, listed with their labels.
            page.get_by_text("boat").first.wait_for(timeout=30_000)
            page.wait_for_timeout(1500)  # the canvas draws the keypoints after the image lays out
            page.screenshot(path=str(shot), full_page=True)
            # The image being labelled (the editor draws it from a blob of the signed link's bytes), as
            # laid out on the page: percent of it is where a keypoint is.
            box = page.evaluate(
                "() => { const r = document.querySelector('img[alt=image]').getBoundingClientRect();"
                " return {x: r.x, y: r.y, width: r.width, height: r.height}; }"
            )
            assert box["width"] > 300, box
            # Drag the boat (80 %, 75 %) to (40 %, 20 %).
            start = (box["x"] + 0.8 * box["width"], box["y"] + 0.75 * box["height"])
            end = (box["x"] + 0.4 * box["width"], box["y"] + 0.2 * box["height"])
            page.mouse.click(*start)
            page.mouse.move(*start)
            page.mouse.down()
            page.mouse.move(*end, steps=12)
            page.mouse.up()
            page.screenshot(path=str(tmp_path / "moved.png"), full_page=True)
            page.get_by_role("button", name="Submit").click()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not ls_client.annotations.list(id=task.id):
                time.sleep(0.5)
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
            (tmp_path / "editor.html").write_text(page.content())
            raise
        finally:
            context.close()
        pulled = run_json("labelstudio", "pull", "Deck", "--as", "lena", env=env)
    assert pulled["point_sets"] == 1, (pulled, tmp_path)
    first, second = _versions(session, take)
    assert (second.created_by, second.note) == (lead.id, "label studio")
    boat = next(p for p in second.points if p["label"] == "boat")
    assert abs(boat["x"] - 0.4) < 0.03 and abs(boat["y"] - 0.2) < 0.03, (boat, tmp_path)
    assert boat["t"] == 3.0  # the moved point keeps its time on the audio
    assert [p for p in second.points if p["label"] != "boat"] == [
        p for p in first.points if p["label"] != "boat"
    ]
