"""The whole path on an S3 blob store (SeaweedFS): upload over real HTTP -> intake stores the take in
the bucket -> `voicecap worker` transcribes and cleans it -> `voicecap export --with-media` copies the
image and audio out of the bucket. Media is served through the app, or by redirect to a presigned URL."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.blobstore import Blobs, open_blobstore
from db.models import Recording, RecordingStatus
from db.settings import Settings
from tests.support.cli import run_cli, run_json
from tests.support.seaweed import s3_calls
from tests.support.server import login
from tests.test_assignments import add_images, fast_logins, make_project
from tests.test_intake import encode, speech


@pytest.fixture(autouse=True)
def blob_url(s3_blob_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every voicecap process of these tests, in-process or CLI, stores blobs in the bucket."""
    monkeypatch.setenv("VOICECAP_BLOB_URL", s3_blob_url)
    return s3_blob_url


@pytest.fixture
def blobs(settings: Settings, blob_url: str) -> Blobs:
    return open_blobstore(blob_url)


def test_upload_worker_export_with_media_on_s3(
    server: str, app, session: Session, blobs: Blobs, settings: Settings, make_user, tmp_path: Path
) -> None:
    fast_logins(app)
    project = make_project(session, name="harbour", min_seconds=2, max_seconds=20, per_image=1)
    images = add_images(session, blobs, project, 2)
    make_user("ann")
    ann = login(server, "ann", "correct-horse")
    task = ann.post("/api/tasks/next", json={}).json()["task"]
    take = encode(speech(4.0), "webm")
    calls = s3_calls(app.state.blobs)  # every request the API's store makes from now on
    sent = ann.put(
        f"/api/recordings/{uuid.uuid4()}",
        params={"assignment_id": task["assignment_id"], "client_seconds": 4.0},
        content=take,
        headers={"Content-Type": "audio/webm;codecs=opus"},
    )
    assert sent.status_code == 201, sent.text
    assert "GetObject" not in calls, calls  # decoded from a local copy made while streaming in
    recording = session.scalars(select(Recording)).one()
    session.commit()
    assert blobs.read_bytes(recording.original_key) == take
    assert blobs.exists(recording.wav_key)
    # Nothing but the (unused) data dir itself on this machine: the blobs are in the bucket.
    assert not (settings.data_dir / "blobs").exists()

    # The app streams media out of the bucket.
    audio = ann.get(f"/api/recordings/by-id/{recording.id}/audio")
    assert audio.status_code == 200 and audio.content == take
    assert audio.headers["content-length"] == str(len(take))
    # One byte range at a time, so the player can seek.
    part = ann.get(f"/api/recordings/by-id/{recording.id}/audio", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == take[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(take)}"
    tail = ann.get(f"/api/recordings/by-id/{recording.id}/audio", headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == take[-50:]
    past = ann.get(f"/api/recordings/by-id/{recording.id}/audio", headers={"Range": f"bytes={len(take)}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(take)}"
    image_id = task["image"]["id"]
    thumb = ann.get(f"/api/images/{image_id}/thumbnail")
    image = next(i for i in images if i.id == image_id)
    assert thumb.status_code == 200 and thumb.content == blobs.read_bytes(image.thumb_key)

    totals = run_json("worker", "--stages", "transcribe,clean", "--drain", "--device", "cpu")
    assert totals["transcribe"]["done"] == 1 and totals["clean"]["done"] == 1
    session.expire_all()
    assert session.get(Recording, recording.id).status == RecordingStatus.captioned
    session.commit()

    out = tmp_path / "export"
    run_cli("export", "harbour", "--out", str(out), "--state", "captioned", "--with-media")
    rows = [json.loads(line) for f in sorted(out.glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert len(rows) == 1, rows
    row = rows[0]
    image_file = out / row["image_path"]
    assert hashlib.sha256(image_file.read_bytes()).hexdigest() == row["sha256"]
    audio_files = list((out / "media" / "audio").rglob("*.*"))
    assert {f.read_bytes() for f in audio_files} >= {take}

    # Without media, rows locate the blobs in the bucket; part builder processes open the store too.
    located = tmp_path / "located"
    run_cli("export", "harbour", "--out", str(located), "--state", "captioned", "--workers", "2")
    rows = [json.loads(line) for f in sorted(located.glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert rows[0]["image_id"] == image.id
    assert rows[0]["image_path"] == blobs.location(image.blob_key) and blobs.location("a/b").startswith(
        "s3://"
    )


def test_media_redirect_gives_a_presigned_url(
    engine, session: Session, blobs: Blobs, settings: Settings, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotate.api.app import create_app
    from tests.support.server import live_server

    project = make_project(session, name="p")
    image = add_images(session, blobs, project, 1)[0]
    make_user("lead", "lead")
    app = create_app(settings.model_copy(update={"media_redirect": True}))
    fast_logins(app)
    with live_server(app) as url:
        lead = login(url, "lead", "correct-horse")
        answer = lead.get(f"/api/images/{image.id}/original", follow_redirects=False)
        assert answer.status_code == 307 and answer.headers["cache-control"] == "no-store"
        location = answer.headers["location"]
        assert "X-Amz-Signature=" in location
        assert httpx.get(location).content == blobs.read_bytes(image.blob_key)
        # Still only for users who may see the image.
        assert httpx.get(f"{url}/api/images/{image.id}/original", follow_redirects=False).status_code == 401
        # A row whose blob is gone gets the usual JSON 404, not a dead link.
        blobs.delete(image.blob_key)
        gone = lead.get(f"/api/images/{image.id}/original", follow_redirects=False)
        assert gone.status_code == 404 and gone.json()["code"] == "blob_missing"
