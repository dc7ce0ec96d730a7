"""Request dependencies: the database session, the current user, roles and CSRF."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from annotate.errors import Forbidden, Unauthorized
from annotate.security import SessionSigner
from annotate.services.sessions import find_session
from db.models import Role, User
from db.settings import Settings

SESSION_COOKIE = "voicecap_session"
CSRF_COOKIE = "voicecap_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session per request. Handlers that write call session.commit() themselves, before responding."""
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _signer(request: Request) -> SessionSigner:
    return request.app.state.signer


def current_user(request: Request, session: Session = Depends(get_session)) -> User:
    cookie = request.cookies.get(SESSION_COOKIE)
    token = _signer(request).loads(cookie) if cookie else None
    found = find_session(session, token) if token else None
    if found is None:
        raise Unauthorized("Please log in.")
    login, user = found
    if user.disabled:
        raise Unauthorized("Your account is disabled or no longer exists.")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        expected = login.csrf
        if not sent or not hmac.compare_digest(sent, expected):
            raise Forbidden("Missing or wrong CSRF token; reload the page.", code="csrf_failed")
    # End the read transaction now: on SQLite it holds the write lock (BEGIN IMMEDIATE), and FastAPI may
    # wait for a free worker thread between this dependency and the handler.
    session.commit()
    request.state.user = user
    request.state.session_token = token
    return user


def require_roles(*roles: Role) -> Callable[..., User]:
    def check(user: User = Depends(current_user)) -> User:
        if user.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise Forbidden(f"This needs the {allowed} role; you are {user.role.value}.", code="wrong_role")
        return user

    return check


require_lead = require_roles(Role.lead, Role.admin)
require_annotator = require_roles(Role.annotator, Role.lead, Role.admin)
