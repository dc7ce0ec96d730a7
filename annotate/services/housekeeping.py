"""Rows that would only pile up: expired login sessions and rate-limit windows that no longer count.

A user's own expired sessions go when they log in again and a limiter key's old windows when that key
is hit again, but a user who never returns, or a key never seen again (a password sprayer's addresses),
would stay forever. Every API process sweeps both at start and then every SWEEP_SECONDS (see
annotate/api/app.py); the deletes are idempotent, so several processes sweeping at once is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from db.models import RateLimitCount, UserSession, utcnow

SWEEP_SECONDS = 600


@dataclass(frozen=True)
class Swept:
    sessions: int
    rate_limit_windows: int


def sweep(session: Session, window_seconds: int, now: datetime | None = None) -> Swept:
    """Delete expired sessions and the limiter windows before the previous one (the limiter reads only
    the current window and the one before it). Flushes; the caller commits."""
    now = now or utcnow()
    expired = session.execute(delete(UserSession).where(UserSession.expires_at <= now))
    current = int(now.timestamp() // window_seconds)
    stale = session.execute(delete(RateLimitCount).where(RateLimitCount.window < current - 1))
    return Swept(int(expired.rowcount or 0), int(stale.rowcount or 0))  # type: ignore[attr-defined]
