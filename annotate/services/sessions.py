"""Server-side login sessions: created at login, looked up on every request, ended by deleting rows.

The cookie carries a random token (256 bits); the table keeps only its sha256, so reading the
database does not hand anyone a working cookie. Logout ends one session; logout everywhere, a password
reset and disabling a user end all of that user's sessions at once, in every API process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import User, UserSession, utcnow

TOKEN_BYTES = 32


@dataclass(frozen=True)
class NewSession:
    token: str  # goes into the HttpOnly cookie, never stored
    csrf: str


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: User, days: int) -> NewSession:
    """A new session row for `user`; also drops this user's expired rows (cheap, indexed)."""
    now = utcnow()
    session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(24)
    session.add(
        UserSession(id=_token_id(token), user_id=user.id, csrf=csrf, expires_at=now + timedelta(days=days))
    )
    session.flush()
    return NewSession(token=token, csrf=csrf)


def find_session(session: Session, token: str) -> tuple[UserSession, User] | None:
    """The live session named by a cookie token and its user, or None (unknown, ended or expired)."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.id == _token_id(token), UserSession.expires_at > utcnow())
    ).first()
    return (row[0], row[1]) if row is not None else None


def end_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.id == _token_id(token)))


def end_user_sessions(session: Session, user_id: int) -> int:
    """End every session of one user; returns how many were live or expired rows."""
    result = session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    return int(result.rowcount or 0)
