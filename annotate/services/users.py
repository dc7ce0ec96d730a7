"""Users: create, list, disable, authenticate, reset passwords."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annotate.errors import Conflict, InvalidInput, NotFound
from annotate.security import generate_password, hash_password, verify_password
from annotate.services.sessions import end_user_sessions
from db.models import Role, User

MIN_PASSWORD_LENGTH = 8


@dataclass
class NewUser:
    user: User
    password: str
    generated: bool


# Names appear in URLs (/api/admin/users/NAME/...), file names and logs: letters, digits and . _ @ -,
# starting with a letter or digit.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


def _check_name(name: str) -> str:
    name = name.strip()
    if not SAFE_NAME.fullmatch(name):
        raise InvalidInput(
            "A user name is 1-100 characters: letters, digits and . _ @ - (starting with a letter or digit)."
        )
    return name


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")


def add_user(session: Session, name: str, role: Role | str, password: str | None = None) -> NewUser:
    name = _check_name(name)
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(f"Unknown role {role!r}; use annotator, lead or admin.") from None
    generated = password is None
    password = password if password is not None else generate_password()
    _check_password(password)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"A user named {name!r} already exists.")
    user = User(name=name, role=role, password_hash=hash_password(password), pseudonym=secrets.token_hex(8))
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"A user named {name!r} already exists.") from None
    return NewUser(user=user, password=password, generated=generated)


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"No user named {name!r}.")
    return user


def list_users(session: Session, role: Role | None = None) -> list[User]:
    query = select(User).order_by(User.name)
    if role is not None:
        query = query.where(User.role == role)
    return list(session.scalars(query))


def set_disabled(session: Session, name: str, disabled: bool = True) -> User:
    user = get_user(session, name)
    user.disabled = disabled
    if disabled:
        end_user_sessions(session, user.id)
    return user


def set_role(session: Session, name: str, role: Role | str) -> User:
    """Change a user's role; their sessions end, so the new role starts with a fresh login."""
    user = get_user(session, name)
    try:
        user.role = Role(role)
    except ValueError:
        raise InvalidInput(f"Unknown role {role!r}; use annotator, lead or admin.") from None
    end_user_sessions(session, user.id)
    return user


def log_out_everywhere(session: Session, name: str) -> int:
    """End every session of the named user (the next request from any of their browsers gets 401)."""
    return end_user_sessions(session, get_user(session, name).id)


def reset_password(session: Session, name: str, password: str | None = None) -> NewUser:
    user = get_user(session, name)
    generated = password is None
    password = password if password is not None else generate_password()
    _check_password(password)
    user.password_hash = hash_password(password)
    end_user_sessions(session, user.id)  # whoever knew the old password is out
    return NewUser(user=user, password=password, generated=generated)


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user, or None for a wrong name, wrong password or disabled account (one answer for all)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        verify_password(_dummy_hash(), password)  # same work as a real check: no user-name oracle by timing
        return None
    if not verify_password(user.password_hash, password) or user.disabled:
        return None
    return user


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Made on first use, not at import: hashing costs ~0.1 s and every CLI command imports this module.
    return hash_password("not-a-real-password")
