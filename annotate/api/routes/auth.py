"""Log in and out; who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from annotate.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentUser,
    LoginLimiterDep,
    SessionDep,
    SettingsDep,
    SignerDep,
)
from annotate.errors import Unauthorized, VoicecapError
from annotate.services.sessions import end_session, end_user_sessions, start_session
from annotate.services.users import authenticate
from db.models import User

router = APIRouter(prefix="/api", tags=["auth"])


class LoginRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    id: int
    name: str
    role: str
    pseudonym: str


def _me(user: User) -> Me:
    return Me(id=user.id, name=user.name, role=user.role.value, pseudonym=user.pseudonym)


@router.post("/auth/login", response_model=Me)
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    limiter: LoginLimiterDep,
) -> Me:
    client = request.client.host if request.client else "unknown"
    wait = limiter.check(client, body.name)
    if wait:
        raise VoicecapError(
            f"Too many login attempts; try again in {int(wait) + 1} s.", code="rate_limited", status=429
        )
    user = authenticate(session, body.name, body.password)
    if user is None:
        raise Unauthorized("Wrong name or password, or the account is disabled.", code="bad_credentials")
    started = start_session(session, user, settings.session_days)
    session.commit()  # before the limiter's own transaction: on SQLite only one may write at a time
    limiter.succeeded(client, body.name)
    max_age = settings.session_days * 86400
    common = {"max_age": max_age, "samesite": "strict", "secure": settings.cookie_secure, "path": "/"}
    response.set_cookie(SESSION_COOKIE, signer.dumps(started.token), httponly=True, **common)
    # Readable by the page's script, which echoes it in X-CSRF-Token (double-submit, bound to the session).
    response.set_cookie(CSRF_COOKIE, started.csrf, httponly=False, **common)
    return _me(user)


def _forget_cookies(response: Response) -> Response:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    response.status_code = 204
    return response


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, session: SessionDep, _: CurrentUser) -> Response:
    """End this session on the server (the cookie stops working everywhere it was copied)."""
    end_session(session, request.state.session_token)
    session.commit()
    return _forget_cookies(response)


@router.post("/auth/logout-everywhere", status_code=204)
def logout_everywhere(response: Response, session: SessionDep, user: CurrentUser) -> Response:
    """End every session of the current user, on every device, this one included."""
    end_user_sessions(session, user.id)
    session.commit()
    return _forget_cookies(response)


@router.get("/me", response_model=Me)
def me(user: CurrentUser) -> Me:
    return _me(user)
