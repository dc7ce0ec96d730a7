"""The review, stats and QC API over real HTTP, on both databases: roles, decisions, audio with Range."""

from __future__ import annotations

import pytest

from db.models import Review
from tests.support.review_seed import PASSWORD, SPEECH, seed
from tests.support.server import login

LEAD_GETS = [
    "/api/review/queue",
    "/api/review/choices",
    "/api/review/captions/{caption}",
    "/api/recordings/{recording}/audio",
    "/api/stats",
    "/api/stats?by=day",
    "/api/stats/live",
    "/api/qc",
    "/api/admin/projects",
    "/api/admin/projects/{project}",
    "/api/admin/users",
]
LEAD_POSTS = [
    ("/api/review/captions/{caption}/decision", {"decision": "approve"}),
    ("/api/admin/projects", {"name": "Sneaky"}),
    ("/api/admin/users", {"name": "mallory"}),
    ("/api/admin/users/bob/disable", None),
    ("/api/admin/users/bob/enable", None),
    ("/api/admin/users/bob/reset-password", None),
    ("/api/admin/projects/{project}/images?filename=a.jpg", None),
]


@pytest.fixture
def data(session, blobs):
    return seed(session, blobs)


def _fill(path: str, data) -> str:
    return path.format(caption=data.captions[0].id, recording=data.recordings[0].id, project=data.project.id)


def test_annotators_get_wrong_role_on_every_lead_route(server, data) -> None:
    client = login(server, "ann", PASSWORD)
    for path in LEAD_GETS:
        response = client.get(_fill(path, data))
        assert response.status_code == 403 and response.json()["code"] == "wrong_role", path
    for path, body in LEAD_POSTS:
        response = client.post(_fill(path, data), json=body) if body else client.post(_fill(path, data))
        assert response.status_code == 403 and response.json()["code"] == "wrong_role", path
    patch = client.patch(f"/api/admin/projects/{data.project.id}", json={"per_image": 3})
    assert patch.status_code == 403 and patch.json()["code"] == "wrong_role"


def test_lead_routes_need_a_login(server, data) -> None:
    import httpx

    response = httpx.get(f"{server}/api/review/queue")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_queue_detail_and_filters(server, data) -> None:
    client = login(server, "lena", PASSWORD)
    queue = client.get("/api/review/queue").json()
    assert [i["id"] for i in queue["items"]] == [c.id for c in data.captions]
    bob = data.annotators[1].id
    assert [i["annotator"] for i in client.get(f"/api/review/queue?annotator={bob}").json()["items"]] == [
        "bob"
    ]
    flagged = client.get("/api/review/queue", params={"flag": "flagged", "project": data.project.id})
    assert [i["id"] for i in flagged.json()["items"]] == [data.captions[1].id]
    assert client.get("/api/review/queue?state=nonsense").json()["code"] == "invalid_input"
    # QC flags filter the takes: bob's caption is under the faithfulness threshold (0.81 < 0.85).
    unfaithful = client.get("/api/review/queue", params={"qc": "unfaithful"}).json()
    assert [i["id"] for i in unfaithful["items"]] == [data.captions[1].id]
    assert client.get("/api/review/queue", params={"qc": "too_short"}).json()["items"] == []
    assert client.get("/api/review/queue", params={"qc": "bogus"}).json()["code"] == "invalid_input"
    assert "outlier_words_per_minute_high" in client.get("/api/review/choices").json()["qc_flags"]
    detail = client.get(f"/api/review/captions/{data.captions[0].id}").json()
    assert detail["image"]["mode"] == "describe"  # narrate/point takes get their points drawn
    assert detail["transcript"]["words"][2] == {
        "start": 0.94,
        "end": 1.22,
        "word": " photo",
        "probability": 0.625,
    }
    assert client.get("/api/review/captions/999999").status_code == 404


def test_decisions_over_http(server, data, session) -> None:
    client = login(server, "lena", PASSWORD)
    first, second, third = (c.id for c in data.captions)
    approved = client.post(f"/api/review/captions/{first}/decision", json={"decision": "approve"})
    assert approved.status_code == 200 and approved.json()["caption"]["status"] == "approved"
    assert approved.json()["review"]["reviewer"] == "lena"
    no_reason = client.post(f"/api/review/captions/{second}/decision", json={"decision": "reject"})
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "invalid_input"
    rejected = client.post(
        f"/api/review/captions/{second}/decision", json={"decision": "reject", "reason": "made-up flag"}
    )
    assert rejected.json()["caption"]["status"] == "rejected"
    edited = client.post(
        f"/api/review/captions/{third}/decision", json={"decision": "edit", "text": "Three red boats."}
    ).json()
    assert edited["new_caption"]["text"] == "Three red boats." and edited["new_caption"]["parent_id"] == third
    stale = client.post(f"/api/review/captions/{third}/decision", json={"decision": "approve"})
    assert stale.status_code == 409 and stale.json()["code"] == "conflict"
    bad = client.post(f"/api/review/captions/{first}/decision", json={"decision": "shrug"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
    stored = session.query(Review).order_by(Review.id).all()
    assert [(r.decision.value, r.source) for r in stored] == [
        ("approve", "web"),
        ("reject", "web"),
        ("edit", "web"),
    ]
    assert client.get("/api/review/queue").json()["total"] == 0
    live = client.get("/api/stats/live").json()
    assert live["review_queue"] == 0 and live["reviews_last_24h"] == 3
    by_annotator = {r["key"]: r for r in client.get("/api/stats").json()["rows"]}
    assert by_annotator["bob"]["rejection_rate"] == 1.0 and by_annotator["ann"]["approved"] == 2


def test_decision_needs_csrf(server, data) -> None:
    client = login(server, "lena", PASSWORD)
    del client.headers["X-CSRF-Token"]
    response = client.post(
        f"/api/review/captions/{data.captions[0].id}/decision", json={"decision": "approve"}
    )
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"


def test_audio_is_served_with_range_support(server, data) -> None:
    client = login(server, "lena", PASSWORD)
    url = f"/api/recordings/{data.recordings[0].id}/audio"
    whole = client.get(url)
    original = (SPEECH / "boats.wav").read_bytes()
    assert whole.status_code == 200 and whole.content == original
    assert whole.headers["content-type"] == "audio/wav" and whole.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == original[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(original)}"
    assert client.get("/api/recordings/999999/audio").status_code == 404


def test_qc_endpoint_filters(server, data) -> None:
    client = login(server, "lena", PASSWORD)
    report = client.get(f"/api/qc?project={data.project.id}").json()
    assert report["total"] == 3 and {a["annotator"] for a in report["annotators"]} == {"ann", "bob"}
    unfaithful = client.get("/api/qc", params={"flag": "unfaithful"}).json()
    assert [t["recording_id"] for t in unfaithful["takes"]] == [data.recordings[1].id]
    by_ann = client.get("/api/qc", params={"annotator": data.annotators[0].id}).json()
    assert {t["annotator"] for t in by_ann["takes"]} == {"ann"}
    assert client.get("/api/stats?by=week").status_code == 422
