"""A take's pointing read back and corrected over real HTTP, on SQLite and PostgreSQL: who may see
and who may correct, versions kept oldest first, a stale base version refused (also when two
reviewers save at once), corrections checked like intake."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from annotate.services.export.pointing import point_set_export
from db.models import PointSet, Role
from tests.support import factories
from tests.support.server import login
from tests.test_assignments import fast_logins

LABELS = ["deck chair", "person"]
WORDS = [
    {"start": 0.0, "end": 0.4, "word": " three", "probability": 0.9},
    {"start": 0.4, "end": 0.9, "word": " deck", "probability": 0.8},
    {"start": 0.9, "end": 1.3, "word": " chairs", "probability": 0.95},
]


@pytest.fixture
def take(server, app, session, make_user) -> dict[str, Any]:
    """A point project's take by `ann` with a trace, version 1 of its points and a transcript."""
    fast_logins(app)
    project = factories.add_project(
        session, "harbour", mode="point", labels=LABELS, min_seconds=2, max_seconds=20
    )
    image = factories.add_image(session, project, width=640, height=480)
    ann, _ = make_user("ann")
    make_user("bob")
    lead, _ = make_user("lea", Role.lead)
    make_user("lou", Role.lead)
    recording = factories.add_recording(session, image, ann, duration_seconds=10.0)
    trace = factories.add_trace(session, recording)
    points = [factories.point_values(0.2, 0.3, 1.0, "deck chair")]
    first = factories.add_point_set(session, recording, points, absent_labels=["person"])
    transcript = factories.add_transcript(session, recording, "three deck chairs", words=WORDS)
    alignment = factories.add_pointing_alignment(
        session, transcript, first, links=[{"point": 0, "phrase": "deck chairs"}], count_mismatch=True
    )
    session.commit()
    return {
        "id": recording.id,
        "image": image,
        "trace": trace,
        "points": points,
        "transcript": transcript,
        "alignment": alignment,
        "lead": lead,
        "clients": {name: login(server, name, "correct-horse") for name in ("ann", "bob", "lea", "lou")},
    }


def correction(base: int, points: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "base_version": base,
        "points": points
        if points is not None
        else [
            {"x": 0.25, "y": 0.3, "t": 1.0, "label": "deck chair"},
            {"x": 0.7, "y": 0.6, "t": None, "label": "deck chair"},
        ],
        "absent_labels": ["person"],
        "note": "moved one, added the chair by the mast",
        **fields,
    }


def versions(session, recording_id: int) -> list[int]:
    session.expire_all()
    found = list(
        session.scalars(
            select(PointSet.version).where(PointSet.recording_id == recording_id).order_by(PointSet.version)
        )
    )
    session.commit()
    return found


def test_the_annotator_and_reviewers_read_everything_the_review_page_draws(take) -> None:
    clients = take["clients"]
    view = clients["ann"].get(f"/api/recordings/{take['id']}/pointing")
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["image"] == {"id": take["image"].id, "width": 640, "height": 480}
    assert body["mode"] == "point" and body["labels"] == LABELS and body["duration_seconds"] == 10.0
    assert body["trace"] == {"segments": take["trace"].segments, "sample_count": 3}
    assert body["current_version"] == 1
    [first] = body["point_sets"]
    assert first["version"] == 1 and first["points"] == take["points"]
    assert first["absent_labels"] == ["person"] and first["created_by"] is None and first["note"] == ""
    assert body["alignment"]["transcript_id"] == take["transcript"].id
    assert body["alignment"]["links"] == [{"point": 0, "phrase": "deck chairs"}]
    assert body["alignment"]["count_mismatch"] is True
    assert body["words"] == WORDS
    assert clients["lea"].get(f"/api/recordings/{take['id']}/pointing").json() == body
    other = clients["bob"].get(f"/api/recordings/{take['id']}/pointing")
    assert other.status_code == 404 and other.json()["code"] == "recording_not_found"
    missing = clients["lea"].get(f"/api/recordings/{take['id'] + 1000}/pointing")
    assert missing.status_code == 404 and missing.json()["code"] == "recording_not_found"


def test_a_take_before_transcription_has_no_alignment_and_no_words(server, session, make_user, app) -> None:
    fast_logins(app)
    project = factories.add_project(session, "narr", mode="narrate")
    ann, _ = make_user("ann")
    recording = factories.add_recording(session, factories.add_image(session, project), ann)
    factories.add_trace(session, recording, [])
    factories.add_point_set(session, recording, [])
    session.commit()
    body = login(server, "ann", "correct-horse").get(f"/api/recordings/{recording.id}/pointing").json()
    assert body["alignment"] is None and body["words"] == [] and body["labels"] == []
    assert body["trace"] == {"segments": [], "sample_count": 0} and body["current_version"] == 1


def test_a_reviewer_correction_adds_a_version_and_keeps_the_history(take, session) -> None:
    lea = take["clients"]["lea"]
    saved = lea.post(f"/api/recordings/{take['id']}/points", json=correction(1))
    assert saved.status_code == 201, saved.text
    body = saved.json()
    assert body["current_version"] == 2 and [v["version"] for v in body["point_sets"]] == [1, 2]
    first, second = body["point_sets"]
    assert first["points"] == take["points"] and first["created_by"] is None  # the original stays
    assert second["created_by"] == "lea" and second["note"] == "moved one, added the chair by the mast"
    assert second["points"] == correction(1)["points"] and second["absent_labels"] == ["person"]
    stored = session.scalar(
        select(PointSet).where(PointSet.recording_id == take["id"], PointSet.version == 2)
    )
    assert stored.created_by == take["lead"].id and stored.points[1]["t"] is None
    # The correction is stored as the export writes it (migration 0010).
    assert (stored.export_groups, stored.points_text) == point_set_export(
        stored.points, stored.absent_labels, take["id"]
    )
    session.commit()
    # Another correction on top of version 2; one from version 1 is now stale.
    stale = take["clients"]["lou"].post(f"/api/recordings/{take['id']}/points", json=correction(1))
    assert stale.status_code == 409 and stale.json()["code"] == "point_set_stale"
    assert "version 2" in stale.json()["message"]
    third = take["clients"]["lou"].post(f"/api/recordings/{take['id']}/points", json=correction(2, note=""))
    assert third.status_code == 201 and third.json()["point_sets"][2]["created_by"] == "lou"
    assert versions(session, take["id"]) == [1, 2, 3]
    # The annotator sees the history too.
    seen = take["clients"]["ann"].get(f"/api/recordings/{take['id']}/pointing").json()
    assert seen["current_version"] == 3 and len(seen["point_sets"]) == 3


def test_only_reviewers_correct_points(take, session) -> None:
    for name in ("ann", "bob"):  # the take's own annotator, and another
        refused = take["clients"][name].post(f"/api/recordings/{take['id']}/points", json=correction(1))
        assert refused.status_code == 403 and refused.json()["code"] == "wrong_role"
    anonymous = httpx.post(
        f"{take['clients']['lea'].base_url}/api/recordings/{take['id']}/points", json=correction(1)
    )
    assert anonymous.status_code == 401
    assert versions(session, take["id"]) == [1]


BAD = {
    "pointing_out_of_image": [{"x": 1.5, "y": 0.3, "t": None, "label": "deck chair"}],
    "pointing_time_outside_take": [{"x": 0.5, "y": 0.3, "t": 12.0, "label": "deck chair"}],
    "pointing_unknown_label": [{"x": 0.5, "y": 0.3, "t": None, "label": "gull"}],
    "pointing_malformed": [{"x": "left", "y": 0.3, "t": None, "label": "deck chair"}],
    "pointing_incomplete": [],
}


@pytest.mark.parametrize("code", list(BAD))
def test_a_bad_correction_is_refused_and_stores_nothing(take, session, code) -> None:
    refused = take["clients"]["lea"].post(
        f"/api/recordings/{take['id']}/points", json=correction(1, BAD[code])
    )
    assert refused.status_code == 422 and refused.json()["code"] == code, refused.text
    assert versions(session, take["id"]) == [1]


def test_too_many_points_in_a_correction_are_refused(take, session, settings) -> None:
    settings.pointing_max_points = 1
    refused = take["clients"]["lea"].post(f"/api/recordings/{take['id']}/points", json=correction(1))
    assert refused.status_code == 422 and refused.json()["code"] == "pointing_too_many_points"
    assert versions(session, take["id"]) == [1]


def test_two_reviewers_saving_at_once_store_one_version(take, session) -> None:
    reviewers = [take["clients"]["lea"], take["clients"]["lou"]] * 2
    barrier = threading.Barrier(len(reviewers))
    statuses: list[int] = []

    def save(client: httpx.Client) -> None:
        with httpx.Client(base_url=client.base_url, cookies=client.cookies, headers=client.headers) as own:
            barrier.wait(timeout=30)
            statuses.append(own.post(f"/api/recordings/{take['id']}/points", json=correction(1)).status_code)

    threads = [threading.Thread(target=save, args=(client,)) for client in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [201] + [409] * (len(reviewers) - 1), statuses
    assert versions(session, take["id"]) == [1, 2]


def test_a_describe_take_has_no_points_to_correct(server, app, session, make_user) -> None:
    fast_logins(app)
    project = factories.add_project(session, "plain")
    ann, _ = make_user("ann")
    make_user("lea", Role.lead)
    recording = factories.add_recording(session, factories.add_image(session, project), ann)
    session.commit()
    lea = login(server, "lea", "correct-horse")
    refused = lea.post(f"/api/recordings/{recording.id}/points", json=correction(1, []))
    assert refused.status_code == 409 and refused.json()["code"] == "pointing_not_expected"
    view = lea.get(f"/api/recordings/{recording.id}/pointing").json()
    assert view["point_sets"] == [] and view["current_version"] is None and view["mode"] == "describe"
