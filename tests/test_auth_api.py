from __future__ import annotations

import httpx

from tests.support.server import login


def test_login_sets_httponly_session_and_csrf_cookie(server: str, make_user) -> None:
    make_user("ann", "annotator")
    response = httpx.post(f"{server}/api/auth/login", json={"name": "ann", "password": "correct-horse"})
    assert response.status_code == 200 and response.json()["role"] == "annotator"
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("voicecap_session="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert any(c.startswith("voicecap_csrf=") and "HttpOnly" not in c for c in cookies)


def test_wrong_password_and_disabled_user_are_refused(server: str, make_user, session) -> None:
    user, _ = make_user("ann")
    bad = httpx.post(f"{server}/api/auth/login", json={"name": "ann", "password": "nope-nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "bad_credentials"
    client = login(server, "ann", "correct-horse")
    user.disabled = True
    session.commit()
    assert client.get("/api/me").json()["code"] == "not_authenticated"


def test_unauthenticated_and_malformed_requests_get_json_errors(server: str) -> None:
    me = httpx.get(f"{server}/api/me")
    assert me.status_code == 401 and me.json()["code"] == "not_authenticated"
    malformed = httpx.post(
        f"{server}/api/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422 and malformed.json()["code"] == "invalid_request"


def test_state_changing_request_without_csrf_token_is_refused(server: str, make_user) -> None:
    make_user("ann")
    client = login(server, "ann", "correct-horse")
    del client.headers["X-CSRF-Token"]
    response = client.post("/api/auth/logout")
    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    client.headers["X-CSRF-Token"] = client.cookies["voicecap_csrf"]
    assert client.post("/api/auth/logout").status_code == 204


def test_login_is_rate_limited(server: str, make_user) -> None:
    make_user("ann")
    codes = [
        httpx.post(f"{server}/api/auth/login", json={"name": "ann", "password": "wrong-pass"}).status_code
        for _ in range(12)
    ]
    assert codes[:10] == [401] * 10 and codes[-1] == 429


def test_session_survives_a_new_app_instance(app, settings, make_user) -> None:
    from annotate.api.app import create_app
    from tests.support.server import live_server

    make_user("ann")
    with live_server(app) as url:
        client = login(url, "ann", "correct-horse")
    with live_server(create_app(settings)) as url2:
        client.base_url = httpx.URL(url2)
        assert client.get("/api/me").json()["name"] == "ann"
