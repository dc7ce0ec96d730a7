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


def next_task(client: httpx.Client, project: str | None = None) -> dict[str, Any]:
    """The client's next task, in the project of that name when given."""
    pick = {"project_id": client.get("/api/tasks/projects").json()} if project else {}
    if project:
        pick = {"project_id": next(p["id"] for p in pick["project_id"] if p["name"] == project)}
    task = client.post("/api/tasks/next", json=pick).json()["task"]
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
    # Stored as the export writes it too (migration 0010): one narrate group, no Molmo text.
    assert json.loads(point_set.export_groups) == [
        {
            "label": None,
            "points": [{"x": 52.0, "y": 61.0}],
            "count": 1,
            "collection_method": "narrate",
            "recording_id": recording.id,
        }
    ]
    assert point_set.points_text is None
    session.commit()
    assert counts(session) == (1, 1, 1)
    # The audio part arrived whole: the stored original is the bytes sent.
    assert narrator.get(f"/api/recordings/by-id/{body['id']}/audio").content == take
    # A retry of the same take (same UUID) stores nothing more and answers the stored take.
    again = multipart_upload(narrator, task["assignment_id"], pointing, take, uuid=uuid)
    assert again.status_code == 200 and again.json()["id"] == body["id"] and not again.json()["created"]
    assert counts(session) == (1, 1, 1)


def answered(**changes: Any) -> dict[str, Any]:
    """Pointing data that answers both labels of the point project; `changes` replace its fields."""
    return {
        "version": 1,
        "traces": TRACE,
        "points": [
            {"x": 0.2, "y": 0.3, "t": 1.0, "label": "deck chair"},
            {"x": 0.4, "y": 0.35, "t": 1.5, "label": "deck chair"},
        ],
        "absent_labels": ["person"],
        **changes,
    }


def test_a_point_take_stores_every_answer_and_the_task_names_its_labels(pointer, session, take) -> None:
    task = next_task(pointer)
    assert task["mode"] == "point" and task["labels"] == ["deck chair", "person"]
    response = multipart_upload(pointer, task["assignment_id"], answered(), take)
    assert response.status_code == 201, response.text
    point_set = session.scalar(select(PointSet).where(PointSet.recording_id == response.json()["id"]))
    assert [p["label"] for p in point_set.points] == ["deck chair", "deck chair"]
    assert point_set.points[1] == {"x": 0.4, "y": 0.35, "t": 1.5, "label": "deck chair"}
    assert point_set.absent_labels == ["person"]
    session.commit()
    assert counts(session) == (1, 1, 1)


def test_an_image_with_its_own_labels_asks_for_those(server, app, session, blobs, make_user, take) -> None:
    client = annotator_in(server, app, session, blobs, make_user, "point", ["person"], "own")
    image = session.scalars(select(Image).order_by(Image.id)).first()
    image.labels = ["boat", "gull"]
    session.commit()
    task = next_task(client)
    assert task["image"]["id"] == image.id and task["labels"] == ["boat", "gull"]
    # The project's label is not this image's.
    project_label = answered(points=[], absent_labels=["person"])
    refused = multipart_upload(client, task["assignment_id"], project_label, take)
    assert refused.json()["code"] == "pointing_unknown_label"
    points = [{"x": 0.5, "y": 0.5, "t": 2.0, "label": "gull"}]
    ok = multipart_upload(
        client, task["assignment_id"], answered(points=points, absent_labels=["boat"]), take
    )
    assert ok.status_code == 201, ok.text


def point(**fields: Any) -> dict[str, Any]:
    return {"x": 0.5, "y": 0.5, "t": 1.0, "label": "deck chair", **fields}


# code -> (status, pointing data, settings to change)
BAD: dict[str, tuple[int, Any, dict[str, Any]]] = {
    "malformed_json": (422, b'{"version": 1, "traces": [', {}),
    "malformed_nan": (422, b'{"version": 1, "traces": [[[NaN, 0.1, 0.2]]], "absent_labels": []}', {}),
    "malformed_deep": (422, b"[" * 100_000, {}),
    "malformed_huge_number": (422, answered(points=[point(x=10**400)]), {}),
    "malformed_shape": (422, answered(traces=[[[0.1, 0.2]]]), {}),
    "malformed_bool": (422, answered(points=[point(x=True)]), {}),
    "malformed_unlabelled": (422, answered(points=[point(label=None)]), {}),
    "malformed_untimed": (422, answered(points=[point(t=None)]), {}),
    "malformed_unknown_field": (422, answered(colour="red"), {}),
    "out_of_image_point": (422, answered(points=[point(x=1.2)]), {}),
    "out_of_image_trace": (422, answered(traces=[[[0.1, -0.01, 0.5]]]), {}),
    "time_after_take": (422, answered(points=[point(t=TAKE_SECONDS + 1.5)]), {}),
    "time_before_take": (422, answered(traces=[[[0.1, 0.1, -1.5], [0.2, 0.2, 0.5]]]), {}),
    "not_monotonic_stroke": (422, answered(traces=[[[0.1, 0.1, 0.5], [0.2, 0.2, 0.5]]]), {}),
    "not_monotonic_strokes": (422, answered(traces=[[[0.1, 0.1, 2.0]], [[0.2, 0.2, 1.0]]]), {}),
    "too_many_points": (422, answered(points=[point(), point(), point()]), {"pointing_max_points": 2}),
    "too_many_samples": (422, answered(), {"pointing_max_trace_samples": 4}),
    "too_large": (413, answered(points=[point(t=0.001 * n) for n in range(200)]), {"pointing_max_kb": 1}),
    "unknown_label": (422, answered(points=[point(label="gull")]), {}),
    "unknown_absent_label": (422, answered(absent_labels=["person", "gull"]), {}),
    "incomplete": (422, answered(absent_labels=[]), {}),
}
CODES = {
    "malformed": "pointing_malformed",
    "out_of_image": "pointing_out_of_image",
    "time": "pointing_time_outside_take",
    "not_monotonic": "pointing_not_monotonic",
    "too_many_points": "pointing_too_many_points",
    "too_many_samples": "pointing_too_many_samples",
    "too_large": "pointing_too_large",
    "unknown": "pointing_unknown_label",
    "incomplete": "pointing_incomplete",
}


def code_of(case: str) -> str:
    return next(code for prefix, code in CODES.items() if case.startswith(prefix))


@pytest.mark.parametrize("case", list(BAD))
def test_every_bad_pointing_input_is_refused_with_its_code_and_nothing_stored(
    pointer, session, blobs, settings, take, case
) -> None:
    good = next_task(pointer)
    assert multipart_upload(pointer, good["assignment_id"], answered(), take).status_code == 201
    keys_before = set(blobs.keys())
    status, pointing, limits = BAD[case]
    for name, value in limits.items():
        setattr(settings, name, value)
    task = next_task(pointer)
    refused = multipart_upload(pointer, task["assignment_id"], pointing, take)
    assert refused.status_code == status, refused.text
    body = refused.json()
    assert body["code"] == code_of(case) and len(body["message"]) > 20
    assert counts(session) == (1, 1, 1) and set(blobs.keys()) == keys_before
    assert not list((blobs.root / ".tmp").iterdir())
    assignment = session.get(Assignment, task["assignment_id"])
    assert assignment.status == AssignmentStatus.leased  # still theirs: fix and submit again
    session.commit()
    for name in limits:
        setattr(settings, name, type(settings).model_fields[name].default)
    retry = multipart_upload(pointer, task["assignment_id"], answered(), take)
    assert retry.status_code == 201 and counts(session) == (2, 2, 2)


def test_the_take_and_its_pointing_travel_together_or_not_at_all(
    server, app, session, blobs, make_user, narrator, pointer, take
) -> None:
    """Describe takes refuse pointing; narrate and point takes refuse to come without it; a body that
    is not two parts in order, or ends early, is refused; the audio's own checks still apply."""
    describer = annotator_in(server, app, session, blobs, make_user, "describe", None, "describe")
    keys_before = set(blobs.keys())
    task = next_task(describer, "describe")
    extra = multipart_upload(describer, task["assignment_id"], {"version": 1, "traces": TRACE}, take)
    assert extra.status_code == 422 and extra.json()["code"] == "pointing_not_expected"
    plain = describer.put(
        f"/api/recordings/{uuidlib.uuid4()}",
        params={"assignment_id": task["assignment_id"]},
        content=take,
        headers={"Content-Type": "audio/webm"},
    )
    assert plain.status_code == 201  # the describe flow is unchanged
    session.expire_all()
    keys_before = set(blobs.keys())
    for client, project in ((narrator, "narrate"), (pointer, "point")):
        bare = client.put(
            f"/api/recordings/{uuidlib.uuid4()}",
            params={"assignment_id": next_task(client, project)["assignment_id"]},
            content=take,
            headers={"Content-Type": "audio/webm"},
        )
        assert bare.status_code == 422 and bare.json()["code"] == "pointing_missing"
    task = next_task(narrator, "narrate")
    swapped = narrator.put(
        f"/api/recordings/{uuidlib.uuid4()}",
        params={"assignment_id": task["assignment_id"]},
        files=[
            ("audio", ("take.webm", take, "audio/webm")),
            ("pointing", ("p.json", json.dumps({"traces": TRACE}).encode(), "application/json")),
        ],
    )
    assert swapped.status_code == 422 and swapped.json()["code"] == "upload_malformed"
    no_audio = narrator.put(
        f"/api/recordings/{uuidlib.uuid4()}",
        params={"assignment_id": task["assignment_id"]},
        files=[("pointing", ("p.json", json.dumps({"traces": TRACE}).encode(), "application/json"))],
    )
    assert no_audio.status_code == 422 and no_audio.json()["code"] == "upload_malformed"
    boundary = "voicecap-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="pointing"\r\n'
        f"Content-Type: application/json\r\n\r\n{json.dumps({'traces': TRACE})}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="t.webm"\r\n'
        "Content-Type: audio/webm\r\n\r\n"
    ).encode()
    cut = narrator.put(
        f"/api/recordings/{uuidlib.uuid4()}",
        params={"assignment_id": task["assignment_id"]},
        content=head + take,  # no closing boundary: the take may be cut short
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert cut.status_code == 422 and cut.json()["code"] == "upload_malformed"
    png = multipart_upload(narrator, task["assignment_id"], {"traces": TRACE}, b"\x89PNG" * 40, "image/png")
    assert png.status_code == 415 and png.json()["code"] == "unsupported_media_type"
    short = encode(speech(1.0), "webm")
    too_short = multipart_upload(narrator, task["assignment_id"], {"traces": TRACE}, short)
    assert too_short.status_code == 422 and too_short.json()["code"] == "audio_too_short"
    assert counts(session) == (1, 0, 0) and set(blobs.keys()) == keys_before
    assert not list((blobs.root / ".tmp").iterdir())


def test_audio_part_over_the_limit_is_stopped_while_streaming(narrator, session, blobs, settings) -> None:
    settings.max_upload_mb = 0.3
    task = next_task(narrator)
    keys_before = set(blobs.keys())
    boundary = "b0undary"

    def body():  # 2.5 MB in chunks, no Content-Length: only the streaming check can stop it
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="pointing"\r\n\r\n{{"traces": []}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"\r\n'
            "Content-Type: audio/webm\r\n\r\n"
        ).encode()
        for _ in range(40):
            yield b"\x1a\x45\xdf\xa3" * 16384
        yield f"\r\n--{boundary}--\r\n".encode()

    refused = narrator.put(
        f"/api/recordings/{uuidlib.uuid4()}",
        params={"assignment_id": task["assignment_id"]},
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert refused.status_code == 413 and refused.json()["code"] == "audio_too_large"
    assert counts(session) == (0, 0, 0) and set(blobs.keys()) == keys_before
    assert not list((blobs.root / ".tmp").iterdir())


def test_concurrent_identical_submits_store_one_take_with_one_trace(narrator, session, take) -> None:
    task = next_task(narrator)
    pointing = {"version": 1, "traces": TRACE, "points": [{"x": 0.3, "y": 0.3, "t": 1.0, "label": None}]}
    uuid = str(uuidlib.uuid4())
    senders = 5
    barrier = threading.Barrier(senders)
    statuses: list[int] = []

    def send() -> None:
        with httpx.Client(
            base_url=narrator.base_url, cookies=narrator.cookies, headers=narrator.headers, timeout=60
        ) as client:
            barrier.wait(timeout=30)
            statuses.append(
                multipart_upload(client, task["assignment_id"], pointing, take, uuid=uuid).status_code
            )

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert sorted(statuses) == [200] * (senders - 1) + [201], statuses
    assert counts(session) == (1, 1, 1)
    assert session.get(Image, task["image"]["id"]).done_count == 1
    session.commit()


def test_the_multipart_body_is_documented_in_openapi(server) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    put = spec["paths"]["/api/recordings/{client_uuid}"]["put"]
    multipart = put["requestBody"]["content"]["multipart/form-data"]
    assert multipart["schema"]["required"] == ["pointing", "audio"]
    assert multipart["encoding"]["pointing"]["contentType"] == "application/json"
    assert "audio/webm" in put["requestBody"]["content"]
    assert "pointing_time_outside_take" in put["responses"]["422"]["description"]
    assert "pointing_too_large" in put["responses"]["413"]["description"]
    assert "/api/recordings/{recording_id}/pointing" in spec["paths"]
    assert "/api/recordings/{recording_id}/points" in spec["paths"]
