"""Password hashing (argon2id), the secret key, and signing of session cookies."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from db.settings import Settings

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def secret_key(settings: Settings) -> str:
    """The configured key, or one generated once and kept in the data dir so restarts keep sessions."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        _create_secret(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def _create_secret(path: Path, value: str) -> None:
    """Write the key readable by its owner only from the first byte (no chmod after the fact), under a
    temporary name linked into place, so two processes starting at once agree on one complete key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(value)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race; keep its key
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class SessionSigner:
    """The session cookie is the random session token, signed: a forged or garbled cookie is refused
    without a database lookup, and changing the key ends every session. The token itself is checked
    against `user_sessions` on every request (see annotate/services/sessions.py)."""

    def __init__(self, key: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="voicecap-session")
        self.max_age = max_age_seconds

    def dumps(self, session_token: str) -> str:
        return self._serializer.dumps(session_token)

    def loads(self, cookie: str) -> str | None:
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            return None
        return data if isinstance(data, str) else None
