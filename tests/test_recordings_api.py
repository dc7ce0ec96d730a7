"""The upload API over real HTTP on SQLite and PostgreSQL: idempotent by client UUID (also when the same
upload arrives concurrently), every refusal as JSON with a stable code, and nothing stored before lost."""

from __future__ import annotations

import threading
import uuid as uuidlib

import httpx
import pytest
from sqlalchemy import func, select

from db.models import Assignment, AssignmentStatus, Image, Recording
from tests.support.server import login
from tests.test_assignments import add_images, fast_logins, make_project
from tests.test_intake import encode, speech, wav_bytes


def upload(client: httpx.Client, assignment_id: int, data: bytes, content_type: str, uuid: str | None = None):
    return client.put(
        f"/api/recordings/{uuid or uuidlib.uuid4()}",
        params={"assignment_id": assignment_id, "client_seconds": 4.2},
        content=data,
        headers={"Content-Type": content_type},
    )


def rows(session) -> int:
    session.expire_all()
    value = session.scalar(select(func.count()).select_from(Recording))
    session.commit()
    return int(value or 0)


@pytest.fixture
def ann(server, app, session, blobs, make_user):
    fast_logins(app)
    project = make_project(session, name="API", min_seconds=2, max_seconds=20, per_image=1)
    add_images(session, blobs, project, 4)
    make_user("ann")
    return login(server, "ann", "correct-horse")


def next_task(client: httpx.Client) -> dict:
    task = client.post("/api/tasks/next", json={}).json()["task"]
    assert task is not None
    return task


def test_upload_then_retry_stores_one_recording(ann, session) -> None:
    task = next_task(ann)
    data = encode(speech(4.0), "webm")
    uuid = str(uuidlib.uuid4())
    first = upload(ann, task["assignment_id"], data, "audio/webm;codecs=opus", uuid)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["created"] and body["client_uuid"] == uuid and body["status"] == "uploaded"
    assert abs(body["duration_seconds"] - 4.0) < 0.1 and body["content_type"] == "audio/webm"
    again = upload(ann, task["assignment_id"], data, "audio/webm;codecs=opus", uuid)
    assert again.status_code == 200 and again.json()["id"] == body["id"] and not again.json()["created"]
    assert rows(session) == 1
    assert ann.get(f"/api/recordings/{uuid}").json()["id"] == body["id"]
    stored = session.get(Recording, body["id"])
    assert stored.meta["client_seconds"] == 4.2 and "python-httpx" in stored.meta["user_agent"]
    session.commit()
    # The image is done; the next request gives another; a second take for a submitted task is refused.
    assert next_task(ann)["image"]["id"] != task["image"]["id"]
    late = upload(ann, task["assignment_id"], data, "audio/webm")
    assert late.status_code == 409 and late.json()["code"] == "assignment_already_submitted"
    today = ann.get("/api/tasks/today").json()
    assert today["recordings"] == 1 and today["seconds"] == pytest.approx(4.0, abs=0.1)
    audio = ann.get(f"/api/recordings/by-id/{body['id']}/audio")
    assert audio.status_code == 200 and audio.content == data
    assert ann.get(f"/api/recordings/by-id/{body['id']}/audio", params={"kind": "wav"}).content[:4] == b"RIFF"


def test_concurrent_duplicate_uuid_uploads_store_one_row(ann, session) -> None:
    task = next_task(ann)
    data = encode(speech(4.0), "ogg")
    uuid = str(uuidlib.uuid4())
    senders = 6
    barrier = threading.Barrier(senders)
    statuses: list[int] = []
    clients = [
        httpx.Client(base_url=ann.base_url, cookies=ann.cookies, headers=ann.headers) for _ in range(senders)
    ]

    def send(client: httpx.Client) -> None:
        barrier.wait(timeout=30)
        response = upload(client, task["assignment_id"], data, "audio/ogg", uuid)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * (senders - 1) + [201], statuses
    assert rows(session) == 1
    image = session.get(Image, task["image"]["id"])
    assert image.done_count == 1
    session.commit()


BAD = {
    "audio_empty": (422, lambda: (b"", "audio/webm")),
    "audio_undecodable": (422, lambda: (b"RIFF....WAVEfmt garbage" * 50, "audio/wav")),
    "audio_too_short": (422, lambda: (encode(speech(1.2), "webm"), "audio/webm")),
    "audio_too_long": (422, lambda: (encode(speech(27.0), "mp4"), "audio/mp4")),
    "audio_silent": (422, lambda: (wav_bytes(speech(6.0) * 0.0005), "audio/wav")),
    "unsupported_media_type": (415, lambda: (b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")),
    "audio_too_large": (413, lambda: (encode(speech(15.0), "wav"), "audio/wav")),
}


@pytest.mark.parametrize("code", list(BAD))
def test_every_bad_take_gets_its_code_and_message_and_loses_nothing(
    ann, session, blobs, settings, code
) -> None:
    settings.max_upload_mb = 0.3  # 15 s of WAV is ~0.5 MB
    good_task = next_task(ann)
    good = encode(speech(4.0), "webm")
    assert upload(ann, good_task["assignment_id"], good, "audio/webm").status_code == 201
    keys_before = set(blobs.keys())
    task = next_task(ann)
    status, make = BAD[code]
    data, content_type = make()
    refused = upload(ann, task["assignment_id"], data, content_type)
    assert refused.status_code == status, refused.text
    body = refused.json()
    assert body["code"] == code and len(body["message"]) > 20  # a sentence for the annotator
    assert rows(session) == 1 and set(blobs.keys()) == keys_before
    assignment = session.get(Assignment, task["assignment_id"])
    assert assignment.status == AssignmentStatus.leased  # still theirs: re-record and submit again
    session.commit()
    retry = upload(ann, task["assignment_id"], encode(speech(4.0), "mp4"), "audio/mp4")
    assert retry.status_code == 201 and rows(session) == 2


def test_annotators_cannot_touch_others_work(server, ann, session, make_user) -> None:
    make_user("bob")
    bob = login(server, "bob", "correct-horse")
    task = next_task(ann)
    data = encode(speech(3.0), "webm")
    uuid = str(uuidlib.uuid4())
    assert upload(ann, task["assignment_id"], data, "audio/webm", uuid).status_code == 201
    assert bob.get(f"/api/recordings/{uuid}").json()["code"] == "recording_not_found"
    stolen = upload(bob, task["assignment_id"], data, "audio/webm")
    assert stolen.status_code == 404 and stolen.json()["code"] == "assignment_not_found"
    reused = upload(bob, next_task(bob)["assignment_id"], data, "audio/webm", uuid)
    assert reused.status_code == 409 and reused.json()["code"] == "recording_id_conflict"
    no_csrf = httpx.put(
        f"{server}/api/recordings/{uuidlib.uuid4()}",
        params={"assignment_id": task["assignment_id"]},
        content=data,
        cookies=ann.cookies,
        headers={"Content-Type": "audio/webm"},
    )
    assert no_csrf.status_code == 403 and no_csrf.json()["code"] == "csrf_failed"
    assert (
        upload(ann, task["assignment_id"], data, "audio/webm", "not-a-uuid").json()["code"]
        == "invalid_request"
    )
    assert rows(session) == 1


def test_the_api_is_documented_in_openapi(server) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    put = spec["paths"]["/api/recordings/{client_uuid}"]["put"]
    assert "audio/webm" in put["requestBody"]["content"] and "413" in put["responses"]
    for path in ("/api/tasks/next", "/api/tasks/{assignment_id}/skip", "/api/images/{image_id}/original"):
        assert path in spec["paths"]


def test_size_limit_holds_for_a_chunked_upload_without_length(ann, session, blobs, settings) -> None:
    settings.max_upload_mb = 0.3
    task = next_task(ann)
    keys_before = set(blobs.keys())

    def body():
        for _ in range(40):  # 2.5 MB, no Content-Length: only the streaming check can stop it
            yield b"\x1a\x45\xdf\xa3" * 16384

    refused = ann.put(
        f"/api/recordings/{uuidlib.uuid4()}",
        params={"assignment_id": task["assignment_id"]},
        content=body(),
        headers={"Content-Type": "audio/webm"},
    )
    assert refused.status_code == 413 and refused.json()["code"] == "audio_too_large"
    assert "0.3 MB" in refused.json()["message"]
    assert rows(session) == 0 and set(blobs.keys()) == keys_before
    assert not list((blobs.root / ".tmp").iterdir())
