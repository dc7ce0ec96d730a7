"""Content-addressed blob store for images, thumbnails and audio.

Keys look like ``ab/cd/abcdef…`` plus an optional suffix. A blob is written to a temp file, fsynced and
renamed into place before the caller commits the row that names it, so a row never points at a partial
file. The interface (put/open/path/exists/delete/keys) is small enough for an object store later.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from db.files import publish
from db.settings import get_settings

CHUNK = 1024 * 1024


class BlobTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit} bytes")
        self.limit = limit


def key_for(sha256: str, suffix: str = "") -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"bad blob key {key!r}")
        return path

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def put_bytes(self, data: bytes, suffix: str = "") -> tuple[str, str]:
        """Store bytes; returns (key, sha256)."""
        return self.put_stream(iter([data]), suffix=suffix)

    def put_file(self, source: Path, suffix: str = "") -> tuple[str, str]:
        with source.open("rb") as handle:
            return self.put_stream(iter(lambda: handle.read(CHUNK), b""), suffix=suffix)

    def put_stream(
        self, chunks: Iterable[bytes], suffix: str = "", max_bytes: int | None = None
    ) -> tuple[str, str]:
        """Stream chunks to a temp file while hashing, then fsync and rename to the content key.

        Raises BlobTooLarge as soon as more than max_bytes arrive, without buffering the rest.
        """
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BlobTooLarge(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            key = key_for(sha, suffix)
            final = self.path(key)
            if final.exists():
                os.unlink(tmp_name)  # same content is already stored
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                publish(tmp_name, final)
            return key, sha
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        for path in self.root.rglob("*"):
            if path.is_file() and self._tmp not in path.parents:
                yield path.relative_to(self.root).as_posix()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size


def get_blobstore(root: Path | None = None) -> BlobStore:
    return BlobStore(root or get_settings().blob_dir)
