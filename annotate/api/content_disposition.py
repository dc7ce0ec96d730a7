"""RFC 6266 Content-Disposition: any file name, in a header that must stay ASCII."""

from __future__ import annotations

from urllib.parse import quote


def attachment(filename: str) -> str:
    """`filename=` with an ASCII stand-in for old clients, `filename*=UTF-8''…` with the real name."""
    fallback = "".join(_plain(ch) for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _plain(ch: str) -> str:
    return ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_"
