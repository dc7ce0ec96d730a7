"""What people see as an image's name: never the server's absolute path to it."""

from __future__ import annotations

from pathlib import PurePath
from urllib.parse import urlsplit, urlunsplit


def public_source(source: str) -> str:
    """A URL without any user:password part; `archive.zip!/member` as the archive's name and the
    member; a path as its file name (the folders above it say where the server keeps its files)."""
    if source.lower().startswith(("http://", "https://")):
        parts = urlsplit(source)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    archive, separator, member = source.partition("!/")
    if separator:
        return f"{PurePath(archive).name}!/{member}"
    return PurePath(source).name
