"""Signed, expiring links to one image or recordings' audio, fetchable without a voicecap session.

Label Studio's editor and code that downloads a dataset's `image_url` fetch media with no voicecap
cookie, so a link carries its own permission: `{public base URL}/api/media/{token}/{name}`, where the
token is the kind of media, its id(s) and an expiry time, signed with the app's secret key
(itsdangerous, with a salt of its own: a media token is never a session and a session never a media
token). Anyone holding a link may fetch that file until it expires; nothing else. The expiry is in the
signed payload (not the signing time), so every link of one export or push expires together and the
same link is the same bytes wherever it is made. Links are checked by `annotate/api/routes/media.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

MediaKind = Literal["image", "audio"]
KINDS: tuple[str, ...] = ("image", "audio")
SALT = "voicecap-media-link"


class MediaLinkInvalid(Exception):
    """A token that is forged, damaged, of an unknown kind, or expired (the message says which)."""


@dataclass(frozen=True)
class MediaSigner:
    key: str

    def _serializer(self) -> URLSafeSerializer:
        return URLSafeSerializer(self.key, salt=SALT)

    def token(self, kind: MediaKind, ids: tuple[int, ...], expires_at: int) -> str:
        return self._serializer().dumps([kind, [int(i) for i in ids], int(expires_at)])

    def verify(self, token: str, now: float | None = None) -> tuple[MediaKind, tuple[int, ...]]:
        """The kind and ids a valid, unexpired token names; MediaLinkInvalid otherwise."""
        try:
            payload = self._serializer().loads(token)
        except BadSignature as exc:
            raise MediaLinkInvalid("This media link is not valid.") from exc
        if not (isinstance(payload, list) and len(payload) == 3 and payload[0] in KINDS):
            raise MediaLinkInvalid("This media link is not valid.")
        kind, ids, expires_at = payload
        if not (isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids)):
            raise MediaLinkInvalid("This media link is not valid.")
        if (time.time() if now is None else now) >= expires_at:
            raise MediaLinkInvalid("This media link has expired; ask for a new export or push.")
        return kind, tuple(ids)


@dataclass(frozen=True)
class MediaLinks:
    """Makes the links of one export or push: one base URL, one signer, one expiry for all of them."""

    base_url: str
    signer: MediaSigner
    expires_at: int

    @classmethod
    def lasting(cls, base_url: str, key: str, days: float, now: float | None = None) -> MediaLinks:
        start = time.time() if now is None else now
        return cls(base_url.rstrip("/"), MediaSigner(key), int(start + days * 86400))

    def url(self, kind: MediaKind, ids: tuple[int, ...], name: str) -> str:
        # The file name is for people and tools that guess a type from it; the server ignores it.
        return f"{self.base_url}/api/media/{self.signer.token(kind, ids, self.expires_at)}/{name}"

    def image(self, image_id: int, suffix: str = ".jpg") -> str:
        return self.url("image", (image_id,), f"image-{image_id}{suffix}")

    def audio(self, recording_ids: tuple[int, ...]) -> str:
        """One recording's 16 kHz WAV, or several played one after another (in the order given)."""
        return self.url("audio", recording_ids, "audio.wav")


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL: what a browser sends as Origin for pages under it."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"
