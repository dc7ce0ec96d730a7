"""Server-side sessions (issue #10, item 2): logout, logout everywhere, password reset, disabling and a
role change end sessions at once, for copies of the cookie too; `voicecap user logout NAME`."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from annotate.services import users as user_service
from db.models import UserSession
from tests.support.cli import run_cli
from tests.support.server import login


def copy_of(client: httpx.Client) -> httpx.Client:
    """Another client holding the same cookies: a stolen or copied session."""
    other = httpx.Client(base_url=client.base_url, timeout=30, cookies=dict(client.cookies))
    other.headers["X-CSRF-Token"] = client.headers["X-CSRF-Token"]
    return other


def test_logout_ends_the_session_on_the_server_not_just_in_this_browser(server, make_user) -> None:
    make_user("ann")
    browser = login(server, "ann", "correct-horse")
    stolen = copy_of(browser)
    assert stolen.get("/api/me").status_code == 200
    assert browser.post("/api/auth/logout").status_code == 204
    assert stolen.get("/api/me").status_code == 401


def test_logout_everywhere_ends_every_session_of_that_user_only(server, make_user, session) -> None:
    make_user("ann")
    make_user("bob")
    laptop, phone = login(server, "ann", "correct-horse"), login(server, "ann", "correct-horse")
    bob = login(server, "bob", "correct-horse")
    assert phone.post("/api/auth/logout-everywhere").status_code == 204
    assert laptop.get("/api/me").status_code == 401 and phone.get("/api/me").status_code == 401
    assert bob.get("/api/me").json()["name"] == "bob"
    assert session.scalar(select(func.count()).select_from(UserSession)) == 1


def test_password_reset_disable_and_role_change_end_sessions_at_once(server, make_user, session) -> None:
    for name in ("ann", "bob", "cat"):
        make_user(name)
    clients = {name: login(server, name, "correct-horse") for name in ("ann", "bob", "cat")}
    user_service.reset_password(session, "ann", "another-password")
    user_service.set_disabled(session, "bob", True)
    user_service.set_role(session, "cat", "lead")
    session.commit()
    for client in clients.values():
        assert client.get("/api/me").status_code == 401
    # A new login works with the new password / role; the disabled user stays out.
    assert login(server, "ann", "another-password").get("/api/me").status_code == 200
    assert login(server, "cat", "correct-horse").get("/api/me").json()["role"] == "lead"
    assert (
        httpx.post(f"{server}/api/auth/login", json={"name": "bob", "password": "correct-horse"}).status_code
        == 401
    )


def test_admin_logs_a_user_out_everywhere_and_a_lead_only_annotators(server, make_user) -> None:
    make_user("boss", "admin")
    make_user("lea", "lead")
    make_user("ann")
    ann, lea = login(server, "ann", "correct-horse"), login(server, "lea", "correct-horse")
    refused = lea.post("/api/admin/users/boss/logout")
    assert refused.status_code == 403 and refused.json()["code"] == "wrong_role"
    ended = lea.post("/api/admin/users/ann/logout")
    assert ended.status_code == 200 and ended.json()["sessions_ended"] == 1
    assert ann.get("/api/me").status_code == 401
    boss = login(server, "boss", "correct-horse")
    assert boss.post("/api/admin/users/lea/logout").json()["sessions_ended"] == 1
    assert lea.get("/api/me").status_code == 401
    assert boss.post("/api/admin/users/nobody/logout").status_code == 404


def test_a_forged_or_unknown_session_cookie_is_refused(server, make_user, session) -> None:
    make_user("ann")
    browser = login(server, "ann", "correct-horse")
    session.execute(UserSession.__table__.delete())
    session.commit()
    assert browser.get("/api/me").status_code == 401  # signed correctly, but no such session
    forged = httpx.get(f"{server}/api/me", cookies={"voicecap_session": "forged.value"})
    assert forged.status_code == 401


def test_the_cli_logs_a_user_out_everywhere(server, make_user) -> None:
    make_user("ann")
    first, second = login(server, "ann", "correct-horse"), login(server, "ann", "correct-horse")
    done = run_cli("user", "logout", "ann")
    assert "2 sessions ended" in done.stdout
    assert first.get("/api/me").status_code == 401 and second.get("/api/me").status_code == 401
    missing = run_cli("user", "logout", "nobody", check=False)
    assert missing.returncode == 1 and "No user named 'nobody'" in missing.stderr
