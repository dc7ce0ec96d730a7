"""Takes with pointing data over real HTTP on SQLite and PostgreSQL: a multipart upload stores the
recording, its trace and its first point set together; every bad input is refused with its code and
nothing stored (no recording, trace, point set or blob); a repeated or concurrent upload stores once."""

from __future__ import annotations

import json
import threading
import uuid as uuidlib
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from db.models import Assignment, AssignmentStatus, Image, PointSet, Recording, Trace
from tests.support import factories
from tests.support.server import login
from tests.test_assignments import add_images, fast_logins, make_project
from tests.test_intake import encode, speech

TAKE_SECONDS = 4.0
TRACE = [[[0.1, 0.2, 0.05], [0.15, 0.25, 0.1], [0.2, 0.3, 0.15]], [[0.8, 0.7, 2.5], [0.81, 0.71, 2.55]]]


def multipart_upload(
    client: httpx.Client,
    assignment_id: int,
    pointing: Any,
    audio: bytes,
    audio_type: str = "audio/webm;codecs=opus",
    uuid: str | None = None,
) -> httpx.Response:
    """PUT a take as the browser does: a `pointing` JSON part first, then the `audio` part."""
    raw = pointing if isinstance(pointing, bytes) else json.dumps(pointing).encode()
    return client.put(
        f"/api/recordings/{uuid or uuidlib.uuid4()}",
        params={"assignment_id": assignment_id},
        files=[
            ("pointing", ("pointing.json", raw, "application/json")),
            ("audio", ("take.webm", audio, audio_type)),
        ],
    )


def counts(session) -> tuple[int, int, int]:
    """(recordings, traces, point sets) as stored."""
    session.expire_all()
    found = tuple(
        int(session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (Recording, Trace, PointSet)
    )
    session.commit()
    return found  # type: ignore[return-value]


def next_task(client: httpx.Client) -> dict[str, Any]:
    task = client.post("/api/tasks/next", json={}).json()["task"]
    assert task is not None
    return task


@pytest.fixture
def take() -> bytes:
    return encode(speech(TAKE_SECONDS), "webm")


def annotator_in(server, app, session, blobs, make_user, mode: str, labels: list[str] | None, name: str):
    fast_logins(app)
    project = make_project(session, name=name, min_seconds=2, max_seconds=20, mode=mode, labels=labels)
    add_images(session, blobs, project, 4)
    make_user(f"ann-{name}")
    return login(server, f"ann-{name}", "correct-horse")


@pytest.fixture
def narrator(server, app, session, blobs, make_user) -> httpx.Client:
    return annotator_in(server, app, session, blobs, make_user, "narrate", None, "narrate")


@pytest.fixture
def pointer(server, app, session, blobs, make_user) -> httpx.Client:
    return annotator_in(server, app, session, blobs, make_user, "point", ["deck chair", "person"], "point")


def test_a_narrated_take_stores_recording_trace_and_points_exactly(narrator, session, take) -> None:
    task = next_task(narrator)
    assert task["mode"] == "narrate" and task["labels"] == []
    pointing = {"version": 1, "traces": TRACE, "points": [{"x": 0.52, "y": 0.61, "t": 3.2, "label": None}]}
    uuid = str(uuidlib.uuid4())
    response = multipart_upload(narrator, task["assignment_id"], pointing, take, uuid=uuid)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] and abs(body["duration_seconds"] - TAKE_SECONDS) < 0.1
    assert body["content_type"] == "audio/webm"
    recording = session.get(Recording, body["id"])
    assert recording.client_uuid == uuid and recording.size_bytes == len(take)
    trace = session.scalar(select(Trace).where(Trace.recording_id == recording.id))
    assert trace.segments == TRACE and trace.sample_count == 5
    point_set = session.scalar(select(PointSet).where(PointSet.recording_id == recording.id))
    assert point_set.version == 1 and point_set.created_by is None and point_set.note == ""
    assert point_set.points == [{"x": 0.52, "y": 0.61, "t": 3.2, "label": None}]
    assert point_set.absent_labels == []
    session.commit()
    assert counts(session) == (1, 1, 1)
    # The audio part arrived whole: the stored original is the bytes sent.
    assert narrator.get(f"/api/recordings/by-id/{body['id']}/audio").content == take
    # A retry of the same take (same UUID) stores nothing more and answers the stored take.
    again = multipart_upload(narrator, task["assignment_id"], pointing, take, uuid=uuid)
    assert again.status_code == 200 and again.json()["id"] == body["id"] and not again.json()["created"]
    assert counts(session) == (1, 1, 1)
