"""Content-addressed blob store for images, thumbnails and audio.

Keys look like ``ab/cd/abcdef…`` plus an optional suffix. Two implementations share the `Blobs`
protocol: `BlobStore`, a local folder (the default), and `S3BlobStore` (`db/blobstore_s3.py`), any
S3-compatible bucket. `VOICECAP_BLOB_URL` chooses (see `open_blobstore`). Either way a blob is complete
and under its content key before the caller commits the row that names it, so a row never points at
a partial object; a crash can only leave an orphan, which `voicecap blobs check --sweep` removes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast, runtime_checkable

from db.files import publish
from db.settings import get_settings

CHUNK = 1024 * 1024
TMP_DIR = ".tmp"


class BlobTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit} bytes")
        self.limit = limit


def key_for(sha256: str, suffix: str = "") -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"


def check_key(key: str) -> str:
    """Refuse keys that could escape the store or name its temporaries."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == TMP_DIR:
        raise ValueError(f"bad blob key {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class BlobEntry:
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class Spooled:
    """A blob just stored, and a local file holding its bytes for as long as the `with` block runs."""

    key: str
    sha256: str
    path: Path


@runtime_checkable
class Blobs(Protocol):
    """What every blob store offers. `url` names the store (a folder path or ``s3://bucket/prefix``)."""

    url: str

    def exists(self, key: str) -> bool: ...
    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """The blob's bytes from `start` to `end` (inclusive; None: to the end), streamed."""
        ...

    def read_bytes(self, key: str) -> bytes: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...
    def keys(self) -> Iterator[str]: ...
    def entries(self) -> Iterator[BlobEntry]: ...
    def put_bytes(self, data: bytes, suffix: str = "") -> tuple[str, str]: ...
    def put_file(self, source: Path, suffix: str = "") -> tuple[str, str]: ...
    def put_stream(
        self, chunks: Iterable[bytes], suffix: str = "", max_bytes: int | None = None
    ) -> tuple[str, str]: ...
    def local_file(self, key: str) -> AbstractContextManager[Path]:
        """A local file holding the blob for the `with` block (the blob itself, or a temp copy)."""
        ...

    def put_stream_spooled(
        self, chunks: Iterable[bytes], suffix: str = "", max_bytes: int | None = None
    ) -> AbstractContextManager[Spooled]:
        """put_stream, and a local file of the same bytes for the `with` block, without reading the blob
        back from the store (the blob itself, or a temp copy written as the bytes went by)."""
        ...

    def location(self, key: str) -> str:
        """Where the blob is, for people and exports: a filesystem path or an s3:// URL."""
        ...

    def presigned_url(self, key: str, seconds: int) -> str | None:
        """A URL that fetches the blob without our app, or None where the store has none."""
        ...

    def sweep_temporaries(self, older_than: datetime) -> int:
        """Remove what interrupted writes left behind before `older_than`; returns how many."""
        ...


class StreamedPuts:
    """put_bytes and put_file for a store whose one way in is put_stream."""

    def put_stream(
        self, chunks: Iterable[bytes], suffix: str = "", max_bytes: int | None = None
    ) -> tuple[str, str]:
        raise NotImplementedError

    def put_bytes(self, data: bytes, suffix: str = "") -> tuple[str, str]:
        """Store bytes; returns (key, sha256)."""
        return self.put_stream(iter([data]), suffix=suffix)

    def put_file(self, source: Path, suffix: str = "") -> tuple[str, str]:
        with source.open("rb") as handle:
            return self.put_stream(iter(lambda: handle.read(CHUNK), b""), suffix=suffix)

    @contextmanager
    def put_stream_spooled(
        self, chunks: Iterable[bytes], suffix: str = "", max_bytes: int | None = None
    ) -> Iterator[Spooled]:
        """Tee the stream into a temp file (outside the data dir) while it goes to the store, so a caller
        that must decode it needs no GET of the object it has just written. The temp file is removed
        when the block ends, or as soon as the put fails (size limit, broken stream)."""
        with tempfile.NamedTemporaryFile(prefix="voicecap-spool-", suffix=suffix) as spool:

            def tee() -> Iterator[bytes]:
                for chunk in chunks:
                    spool.write(chunk)  # at most one chunk past max_bytes: put_stream stops there
                    yield chunk

            key, sha = self.put_stream(tee(), suffix=suffix, max_bytes=max_bytes)
            spool.flush()
            yield Spooled(key, sha, Path(spool.name))


class BlobStore(StreamedPuts):
    """The local folder store: a blob is streamed to a temp file, fsynced and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / TMP_DIR
        self._tmp.mkdir(parents=True, exist_ok=True)
        self.url = str(self.root.resolve())

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"bad blob key {key!r}")
        return path

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        handle = self.path(key).open("rb")
        if start == 0 and end is None:
            return handle
        handle.seek(start)
        window = _Window(handle, None if end is None else end - start + 1)
        return cast(BinaryIO, io.BufferedReader(window, CHUNK))

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def local_file(self, key: str) -> AbstractContextManager[Path]:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(f"blob {key} is missing from the blob store")
        return nullcontext(path)

    @contextmanager
    def put_stream_spooled(
        self, chunks: Iterable[bytes], suffix: str = "", max_bytes: int | None = None
    ) -> Iterator[Spooled]:
        """The stored blob is already a local file: no second copy."""
        key, sha = self.put_stream(chunks, suffix=suffix, max_bytes=max_bytes)
        yield Spooled(key, sha, self.path(key))

    def location(self, key: str) -> str:
        return f"{self.url}/{check_key(key)}"

    def presigned_url(self, key: str, seconds: int) -> str | None:
        return None

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
                os.utime(final)  # in use again: no longer an old orphan for `blobs check --sweep`
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
        for entry in self.entries():
            yield entry.key

    def entries(self) -> Iterator[BlobEntry]:
        for path in self.root.rglob("*"):
            if path.is_file() and self._tmp not in path.parents:
                stat = path.stat()
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                yield BlobEntry(path.relative_to(self.root).as_posix(), stat.st_size, modified)

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def sweep_temporaries(self, older_than: datetime) -> int:
        removed = 0
        for path in self._tmp.iterdir():
            if path.is_file() and datetime.fromtimestamp(path.stat().st_mtime, UTC) < older_than:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


class _Window(io.RawIOBase):
    """At most `length` bytes of a file from where it stands (a Range request on a local blob)."""

    def __init__(self, handle: BinaryIO, length: int | None) -> None:
        self._handle = handle
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer) if self._left is None else min(len(buffer), self._left)
        data = self._handle.read(want)
        buffer[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._handle.close()
        super().close()


def open_blobstore(url: str | Path) -> Blobs:
    """`s3://BUCKET/PREFIX` opens a bucket (endpoint and credentials the standard AWS way: the
    AWS_* environment variables or ~/.aws); anything else is a local folder."""
    text = str(url)
    if text.startswith("s3://"):
        from db.blobstore_s3 import S3BlobStore  # boto3 loads only where a bucket is used

        return S3BlobStore(text)
    if "://" in text:
        raise ValueError(f"unsupported blob store URL {text!r}: use a folder or s3://BUCKET/PREFIX")
    return BlobStore(Path(text))


def get_blobstore(location: str | Path | None = None) -> Blobs:
    return open_blobstore(location or get_settings().blob_location)
