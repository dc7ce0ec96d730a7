"""Log in and out; who am I."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from annotate.api.deps import CSRF_COOKIE, SESSION_COOKIE, CurrentUser, SessionDep, SettingsDep, SignerDep
from annotate.errors import Unauthorized, VoicecapError
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
) -> Me:
    client = request.client.host if request.client else "unknown"
    limiter = request.app.state.login_limiter
    for key in (f"ip:{client}", f"user:{body.name}"):
        wait = limiter.hit(key)
        if wait:
            raise VoicecapError(
                f"Too many login attempts; try again in {int(wait) + 1} s.", code="rate_limited", status=429
            )
    user = authenticate(session, body.name, body.password)
    if user is None:
        raise Unauthorized("Wrong name or password, or the account is disabled.", code="bad_credentials")
    limiter.reset(f"user:{body.name}")
    csrf = secrets.token_urlsafe(24)
    max_age = settings.session_days * 86400
    common = {"max_age": max_age, "samesite": "strict", "secure": settings.cookie_secure, "path": "/"}
    response.set_cookie(SESSION_COOKIE, signer.dumps(user.id, csrf), httponly=True, **common)
    # Readable by the page's script, which echoes it in X-CSRF-Token (double-submit, bound to the session).
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)
    return _me(user)


@router.post("/auth/logout", status_code=204)
def logout(response: Response, _: CurrentUser) -> Response:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    response.status_code = 204
    return response


@router.get("/me", response_model=Me)
def me(user: CurrentUser) -> Me:
    return _me(user)
