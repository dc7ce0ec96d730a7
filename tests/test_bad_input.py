"""No 500 on bad input (issue #10, item 5): each input schemathesis found, answered with a clear 4xx."""

from __future__ import annotations

import httpx
import pytest

from tests.support.review_seed import PASSWORD, seed
from tests.support.server import login

HUGE = 2**63


@pytest.fixture
def lead(server, session, blobs):
    data = seed(session, blobs, takes=1)
    return login(server, "lena", PASSWORD), data


@pytest.mark.parametrize(
    "path",
    [
        f"/api/review/captions/{HUGE}",
        f"/api/images/{HUGE}",
        f"/api/images/{HUGE}/thumbnail",
        f"/api/admin/projects/{HUGE}",
        f"/api/projects/{HUGE}/export",
        f"/api/review/queue?project={HUGE}",
        f"/api/review/queue?annotator={HUGE}&after={HUGE * 4}",
        f"/api/qc?project={HUGE}",
        f"/api/stats?project={HUGE}",
        f"/api/review/captions/{-HUGE - 1}",
    ],
)
def test_integer_ids_past_64_bits_are_refused_not_crashed(lead, path: str) -> None:
    client, _ = lead
    response = client.get(path)
    assert response.status_code in (404, 422), (response.status_code, response.text[:300])
    assert response.json()["code"] in ("not_found", "invalid_request")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_json_bodies_are_refused(lead, constant: str) -> None:
    client, data = lead
    body = f'{{"name": "x", "min_seconds": {constant}, "max_seconds": 60}}'
    created = client.post("/api/admin/projects", content=body, headers={"content-type": "application/json"})
    assert created.status_code == 422 and created.json()["code"] == "invalid_request"
    assert constant in created.json()["message"]
    patched = client.patch(
        f"/api/admin/projects/{data.project.id}",
        content=f'{{"max_seconds": {constant}}}',
        headers={"content-type": "application/json"},
    )
    assert patched.status_code == 422
    assert client.get(f"/api/admin/projects/{data.project.id}").status_code == 200  # nothing stored


def test_renaming_a_project_to_a_taken_name_is_a_conflict(lead) -> None:
    client, data = lead
    other = client.post("/api/admin/projects", json={"name": "Other", "min_seconds": 5, "max_seconds": 60})
    assert other.status_code == 201
    renamed = client.patch(f"/api/admin/projects/{other.json()['id']}", json={"name": data.project.name})
    assert renamed.status_code == 409 and renamed.json()["code"] == "conflict"
    assert data.project.name in renamed.json()["message"]


def test_a_jsonl_export_of_a_non_latin_project_name_downloads(lead) -> None:
    client, data = lead
    assert client.patch(f"/api/admin/projects/{data.project.id}", json={"name": "街景"}).status_code == 200
    response = client.get(f"/api/projects/{data.project.id}/export?format=jsonl&state=all")
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''%E8%A1%97%E6%99%AF-all.jsonl" in disposition
    assert 'filename="' in disposition and disposition.isascii()


def test_qc_for_an_annotator_without_takes_and_any_flag(lead, make_user) -> None:
    client, _ = lead
    nobody, _ = make_user("quiet")
    response = client.get(f"/api/qc?annotator={nobody.id}&flag=any")
    assert response.status_code == 200 and response.json()["takes"] == []


@pytest.mark.parametrize("name", ["a/b", "../x", "a\\b", "semi;colon", "%2F", "名前", "a?b", "a#b"])
def test_user_names_are_restricted_to_a_safe_set(lead, name: str) -> None:
    client, _ = lead
    response = client.post("/api/admin/users", json={"name": name, "password": "long-enough-pass"})
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
    assert "letters, digits" in response.json()["message"]


def test_a_safe_name_still_works_everywhere(server, lead) -> None:
    client, _ = lead
    created = client.post("/api/admin/users", json={"name": "ann.o-2_x@site", "password": "long-enough-pass"})
    assert created.status_code == 201
    assert client.post("/api/admin/users/ann.o-2_x@site/disable").status_code == 200
    assert httpx.get(f"{server}/api/health").status_code == 200
