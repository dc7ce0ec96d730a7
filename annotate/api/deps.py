"""Request dependencies: the one way a route gets the session, settings, stores and current user.

Routes declare what they need by type, as FastAPI's full-stack template does:

    def handler(session: SessionDep, user: LeadUser, settings: SettingsDep) -> ...

`CurrentUser` is any logged-in user (and checks the CSRF token on writes); `LeadUser` and
`AnnotatorUser` add the role rule of annotate.services.permissions.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from annotate.api.ratelimit import LoginLimiter
from annotate.errors import Forbidden, Unauthorized
from annotate.security import SessionSigner
from annotate.services.media_links import MediaSigner
from annotate.services.permissions import RECORDER_ROLES, check_reviewer, check_role
from annotate.services.sessions import find_session
from db.blobstore import Blobs
from db.models import Role, User
from db.settings import Settings

SESSION_COOKIE = "voicecap_session"
CSRF_COOKIE = "voicecap_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_blobs(request: Request) -> Blobs:
    return request.app.state.blobs


def get_signer(request: Request) -> SessionSigner:
    return request.app.state.signer


def get_media_signer(request: Request) -> MediaSigner:
    return request.app.state.media_signer


def get_login_limiter(request: Request) -> LoginLimiter:
    return request.app.state.login_limiter


def get_engine(request: Request) -> Engine:
    """For work that opens its own sessions or connections (exports, ingest's writer)."""
    return request.app.state.engine


def get_session_factory(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessions


def get_session(request: Request) -> Iterator[Session]:
    """A session per request. Handlers that write call session.commit() themselves, before responding."""
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
BlobsDep = Annotated[Blobs, Depends(get_blobs)]
SignerDep = Annotated[SessionSigner, Depends(get_signer)]
LoginLimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]
MediaSignerDep = Annotated[MediaSigner, Depends(get_media_signer)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
SessionDep = Annotated[Session, Depends(get_session)]


def current_user(request: Request, session: SessionDep, signer: SignerDep) -> User:
    cookie = request.cookies.get(SESSION_COOKIE)
    token = signer.loads(cookie) if cookie else None
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


CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: Role) -> Callable[..., User]:
    def check(user: CurrentUser) -> User:
        return check_role(user, roles)

    return check


def require_lead(user: CurrentUser) -> User:
    return check_reviewer(user)


require_annotator = require_roles(*RECORDER_ROLES)

LeadUser = Annotated[User, Depends(require_lead)]
AnnotatorUser = Annotated[User, Depends(require_annotator)]
