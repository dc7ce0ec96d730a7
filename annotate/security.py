"""Password hashing (argon2id), the secret key, and signing of session cookies."""

from __future__ import annotations

import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from annotate.services.media_links import MediaLinks
from db.files import atomic_write
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
        # Atomic and private from the first byte: a crash never leaves an empty key behind, and two
        # processes starting at once agree on one key.
        with atomic_write(path, file_mode=0o600, keep_existing=True) as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


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


def media_links(settings: Settings, days: float | None = None) -> MediaLinks | None:
    """Signed links under VOICECAP_PUBLIC_BASE_URL, lasting VOICECAP_MEDIA_LINK_DAYS; None without a base."""
    if not settings.public_base_url:
        return None
    lifetime = settings.media_link_days if days is None else days
    return MediaLinks.lasting(settings.public_base_url, secret_key(settings), lifetime)
