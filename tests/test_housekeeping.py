"""The sweep of rows that would only pile up (expired sessions, old limiter windows), on SQLite and
PostgreSQL, and that each API process runs it when it starts."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from annotate.services.housekeeping import sweep
from db.models import RateLimitCount, UserSession, utcnow
from tests.support import factories

WINDOW = 60


def seed(session) -> int:
    """Two sessions (one expired) and limiter windows: current, previous and two stale ones."""
    now = utcnow()
    user = factories.add_user(session, "ann")
    session.add_all(
        [
            UserSession(id="a" * 64, user_id=user.id, csrf="x", expires_at=now - timedelta(seconds=1)),
            UserSession(id="b" * 64, user_id=user.id, csrf="x", expires_at=now + timedelta(days=1)),
        ]
    )
    current = int(now.timestamp() // WINDOW)
    for key, window in [("k1", current), ("k1", current - 1), ("k1", current - 2), ("gone", current - 500)]:
        session.add(RateLimitCount(key=key, window=window, count=3))
    session.commit()
    return current


def left(session) -> tuple[list[str], list[tuple[str, int]]]:
    session.expire_all()
    found = (
        list(session.scalars(select(UserSession.id))),
        [tuple(r) for r in session.execute(select(RateLimitCount.key, RateLimitCount.window))],
    )
    session.commit()
    return found  # type: ignore[return-value]


def test_the_sweep_drops_expired_sessions_and_windows_no_limiter_reads(session) -> None:
    current = seed(session)
    swept = sweep(session, WINDOW)
    session.commit()
    assert (swept.sessions, swept.rate_limit_windows) == (1, 2)
    sessions, windows = left(session)
    assert sessions == ["b" * 64]
    assert sorted(windows) == [("k1", current - 1), ("k1", current)]
    again = sweep(session, WINDOW)  # nothing more to do: idempotent, as N processes sweeping need
    session.commit()
    assert (again.sessions, again.rate_limit_windows) == (0, 0)


def test_an_api_process_sweeps_when_it_starts(app, session) -> None:
    current = seed(session)
    with TestClient(app) as client:  # runs the app's lifespan, as `voicecap serve` does
        assert client.get("/api/health").status_code == 200
    sessions, windows = left(session)
    assert sessions == ["b" * 64]
    assert sorted(windows) == [("k1", current - 1), ("k1", current)]
