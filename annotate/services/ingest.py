"""Image ingestion: turn a folder, manifest, URL list or zip into Image rows, once per content hash.

The shape of a run:

* A source iterator (`iter_folder`, `iter_manifest`, `iter_url_list`, `iter_zip`, or `items_from_source`
  which picks one) yields `IngestItem`s lazily, so a million-row manifest is never held in memory.
* A few threads read each item's bytes (file, zip member or HTTP download, with a size cap), hash
  them, skip hashes the project already has *before* decoding (this is what makes a re-run fast), and
  otherwise verify and thumbnail the image (annotate.imaging) and write the original and the thumbnail
  into the blob store. Pillow, hashlib and file I/O release the GIL, so the threads use every core.
* The calling thread keeps a bounded window of items in flight, takes results in submission order, and
  inserts rows in batches with INSERT … ON CONFLICT DO NOTHING, so a concurrent ingest of the same file
  into the same project cannot fail the run or add it twice.

Blobs are written (fsynced and renamed) before the row that names them commits; a run that dies leaves
at most unreferenced blobs, which are harmless, and the next run resumes by skipping known hashes.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import json
import os
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from annotate.errors import InvalidInput
from annotate.imaging import ImageRejected, configure_pillow, inspect_image, sha256_hex
from annotate.services import url_guard
from annotate.services.jsonl import read_jsonl
from annotate.services.pointing import normalize_labels
from db import summaries
from db.blobstore import Blobs, key_for
from db.models import Image, Project, ProjectMode, utcnow
from db.settings import Settings

# Files a folder walk or a zip considers; anything else (README, .DS_Store, sidecar JSON) is ignored.
# TIFF and HEIC are included so that they are reported as unsupported rather than silently skipped.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".mpo"}
    | {".tif", ".tiff", ".heic", ".heif", ".avif", ".jxl"}
)
MANIFEST_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
URL_LIST_SUFFIXES = frozenset({".txt", ".urls", ".list"})
# Manifest columns that can name the image, in order of preference; every other column becomes metadata.
LOCATION_COLUMNS = ("path", "url", "image", "image_url", "image_path", "file", "filename")
LABELS_COLUMN = "labels"  # point mode: what to point at in this image (else the project's labels)

ROW_BATCH = 200  # rows per INSERT/commit
BATCH_SECONDS = 2.0  # ... or sooner, so a slow (URL) ingest shows its rows
IN_FLIGHT_PER_WORKER = 4  # bounds memory: at most this many items read/decoded per thread at once


# ---------------------------------------------------------------------------------------------- items


@dataclass
class IngestItem:
    """One thing to ingest. Exactly one of path, url, (zip_path, member) or data says where its bytes are.

    `source` is what the Image row and the summary call it (an absolute path, a URL, `archive.zip!/a.jpg`).
    `error` marks an entry a source iterator could not turn into an item (a bad manifest line): it is
    reported as rejected without being read.
    """

    source: str
    path: Path | None = None
    url: str | None = None
    zip_path: Path | None = None
    member: str | None = None
    data: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    labels: list[str] | None = None  # point mode: the manifest's labels for this image


@dataclass
class Rejection:
    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class IngestSummary:
    added: int = 0
    duplicate: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "duplicate": self.duplicate,
            "rejected": [r.to_json() for r in self.rejected],
        }

    @property
    def processed(self) -> int:
        return self.added + self.duplicate + len(self.rejected)

    def reasons(self) -> dict[str, int]:
        """Rejections counted by kind: the reason up to its first colon ("decompression bomb", …)."""
        counts: dict[str, int] = {}
        for rejection in self.rejected:
            kind = rejection.reason.split(":", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# --------------------------------------------------------------------------------------------- sources


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def item_for_location(
    location: str, base: Path | None = None, meta: dict[str, Any] | None = None, *, confine: bool = False
) -> IngestItem:
    """A URL or a path (relative paths are relative to `base`, the manifest's folder).

    With `confine`, a path must stay inside `base`: an absolute path, `..` or a symlink out of it
    is refused, so a manifest someone hands the lead cannot pull in /etc or another project's files."""
    location = location.strip()
    if is_url(location):
        return IngestItem(source=location, url=location, meta=meta or {})
    path = Path(location).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    item = IngestItem(source=str(path.absolute()), path=path, meta=meta or {})
    if confine and base is not None:
        item.error = _outside_reason(location, path, base)
    return item


def _outside_reason(location: str, path: Path, base: Path) -> str | None:
    hint = "give --allow-outside to read files outside the manifest's folder"
    if Path(location).expanduser().is_absolute():
        return f"refused: absolute path {location!r}; {hint}"
    if not path.resolve().is_relative_to(base.resolve()):
        return f"refused: {location!r} is outside the manifest's folder; {hint}"
    return None


def iter_folder(root: Path) -> Iterator[IngestItem]:
    """Image files under `root`, recursively, in sorted order; hidden files and folders are skipped.

    Symbolic links to files are followed (a dangling one is reported); links to folders are not, so a
    link loop cannot make the walk endless.
    """
    root = Path(root)
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable.append):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            path = Path(dirpath, name)
            yield IngestItem(source=str(path.absolute()), path=path)
    for error in unreadable:
        where = str(Path(error.filename).absolute()) if error.filename else str(root)
        yield IngestItem(source=where, error=f"cannot read folder: {error.strerror or error}")


def iter_manifest(path: Path, allow_outside: bool = False) -> Iterator[IngestItem]:
    """Rows of a CSV/TSV (header row) or JSON Lines manifest.

    The image is named by the first of these columns present: path, url, image, image_url, image_path,
    file, filename. Every other column is kept as the image's metadata (CSV cells as strings, empty
    cells dropped; JSON values as they are). A bad line is reported as rejected; the run goes on.
    """
    path = Path(path)
    kind = MANIFEST_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(f"{path}: a manifest must end in .csv, .tsv, .jsonl or .ndjson.")
    rows = _jsonl_rows(path) if kind == "jsonl" else _csv_rows(path, "\t" if kind == "tsv" else ",")
    for line, row in rows:
        where = f"{path.absolute()}:{line}"
        if isinstance(row, str):
            yield IngestItem(source=where, error=f"manifest line {line}: {row}")
            continue
        column = next((c for c in LOCATION_COLUMNS if isinstance(row.get(c), str) and row[c].strip()), None)
        if column is None:
            yield IngestItem(
                source=where, error=f"manifest line {line}: no {' or '.join(LOCATION_COLUMNS[:2])}"
            )
            continue
        meta = {k: v for k, v in row.items() if k not in LOCATION_COLUMNS and k and k != LABELS_COLUMN}
        item = item_for_location(row[column], base=path.parent, meta=meta, confine=not allow_outside)
        if LABELS_COLUMN in row:
            try:
                item.labels = manifest_labels(row[LABELS_COLUMN])
            except InvalidInput as exc:
                item.error = item.error or f"manifest line {line}: {exc.message}"
        yield item


def manifest_labels(value: Any) -> list[str] | None:
    """An image's labels: a JSON list (JSON Lines) or `a|b|c` (CSV). Empty means none of its own."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split("|")
    if not isinstance(value, list):
        raise InvalidInput("labels must be a list of strings (JSON Lines) or a|b|c (CSV)")
    labels = normalize_labels(value, "labels")
    return labels or None


def _open_text(path: Path) -> TextIO:
    try:
        # utf-8-sig: spreadsheet programs put a byte-order mark in front of the header.
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"Cannot read {path}: {exc.strerror}") from None


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with _open_text(path) as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = [name.strip() for name in (reader.fieldnames or [])]
        if not any(name in LOCATION_COLUMNS for name in header):
            raise InvalidInput(
                f"{path}: the header names no image column (one of {', '.join(LOCATION_COLUMNS)}); "
                f"it has: {', '.join(header) or 'nothing'}."
            )
        reader.fieldnames = header
        try:
            for row in reader:
                cells = {k: v.strip() for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}
                yield reader.line_num, {k: v for k, v in cells.items() if v}
        except (csv.Error, UnicodeDecodeError) as exc:
            yield reader.line_num, f"unreadable CSV ({exc}); the rest of the manifest was skipped"


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for line in read_jsonl(path):
        yield line.number, line.row if line.row is not None else str(line.problem)


def iter_url_list(path: Path, allow_outside: bool = False) -> Iterator[IngestItem]:
    """One URL (or path, confined like a manifest's) per line; blank lines and # comments are skipped."""
    path = Path(path)
    with _open_text(path) as handle:
        for text in handle:
            text = text.strip()
            if text and not text.startswith("#"):
                yield item_for_location(text, base=path.parent, confine=not allow_outside)


def iter_zip(path: Path) -> Iterator[IngestItem]:
    """Image members of a zip archive (read straight from the archive by the threads, never extracted)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidInput(f"{path} is not a readable zip archive: {exc}") from None
    for info in sorted(infos, key=lambda i: i.filename):
        name = info.filename
        parts = name.split("/")
        if info.is_dir() or any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue
        if Path(name).suffix.lower() in IMAGE_SUFFIXES:
            yield IngestItem(source=f"{path.absolute()}!/{name}", zip_path=path, member=name)


def upload_items(path: Path, name: str) -> list[IngestItem]:
    """The items of one uploaded file (an image, or a zip of images) saved at `path`.

    Items are named after `name`, the file's name as uploaded, never the temporary path.
    """
    if not name.lower().endswith(".zip"):
        return [IngestItem(source=name, path=path)]
    return [
        IngestItem(source=f"{name}!/{item.member}", zip_path=item.zip_path, member=item.member)
        for item in iter_zip(path)
    ]


def items_from_source(source: str, allow_outside: bool = False) -> Iterator[IngestItem]:
    """Pick the reader by what SOURCE is: a URL, a folder, a manifest, a URL list, a zip or an image.

    `allow_outside` lets a manifest or list name files outside its own folder."""
    if is_url(source):
        return iter([item_for_location(source)])
    path = Path(source).expanduser()
    if not path.exists():
        raise InvalidInput(f"{source} does not exist.")
    suffix = path.suffix.lower()
    if path.is_dir():
        return iter_folder(path)
    if suffix in MANIFEST_SUFFIXES:
        return iter_manifest(path, allow_outside)
    if suffix == ".zip":
        return iter_zip(path)
    if suffix in URL_LIST_SUFFIXES:
        return iter_url_list(path, allow_outside)
    if suffix in IMAGE_SUFFIXES:
        return iter([item_for_location(str(path))])
    raise InvalidInput(
        f"Don't know how to ingest {source}: give a folder, a .csv/.tsv/.jsonl manifest, "
        "a .txt list of URLs, a .zip archive, an image file or an http(s) URL."
    )


def count_items(source: str, allow_outside: bool = False) -> int:
    """How many items SOURCE holds, for a progress bar (reads the listing, not the images)."""
    return sum(1 for _ in items_from_source(source, allow_outside))


# ------------------------------------------------------------------- per item, in the pipeline's threads


@dataclass(frozen=True)
class StorerConfig:
    max_pixels: int
    max_bytes: int
    fetch_timeout: float
    known: bytes  # the project's sha256 digests, 32 bytes each, sorted: checked before any decoding
    allow_private_urls: bool = False


@dataclass(frozen=True)
class Stored:
    sha256: str
    width: int
    height: int
    format: str
    blob_key: str
    thumb_key: str
    orientation: int


@dataclass(frozen=True)
class Known:
    sha256: str


@dataclass(frozen=True)
class Refused:
    reason: str


Outcome = Stored | Known | Refused


class _ImageStorer:
    """Reads, checks, thumbnails and stores one item at a time; the pipeline's threads share one.

    The known-hash table is read-only; the HTTP client is thread-safe; each thread keeps its own zip
    handle.
    """

    def __init__(self, config: StorerConfig, blobs: Blobs) -> None:
        self.config = config
        self.blobs = blobs
        self.known_count = len(config.known) // 32
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._local = threading.local()
        configure_pillow(config.max_pixels)

    def is_known(self, sha: str) -> bool:
        digest, known = bytes.fromhex(sha), self.config.known
        index = bisect.bisect_left(range(self.known_count), digest, key=lambda i: known[i * 32 : i * 32 + 32])
        return index < self.known_count and known[index * 32 : index * 32 + 32] == digest

    def process(self, item: IngestItem) -> Outcome:
        try:
            data = self.read(item)
            sha = sha256_hex(data)
            if self.is_known(sha):
                return Known(sha)
            info = inspect_image(data, self.config.max_pixels, name=item.source, sha256=sha)
            blob_key = key_for(sha, info.suffix)
            if not self.blobs.exists(blob_key):  # stored earlier (another project, a killed run)
                stored_key, stored_sha = self.blobs.put_bytes(data, suffix=info.suffix)
                assert stored_key == blob_key and stored_sha == sha
            thumb_key, _ = self.blobs.put_bytes(info.thumbnail, suffix=".jpg")
            return Stored(sha, info.width, info.height, info.format, blob_key, thumb_key, info.orientation)
        except ImageRejected as exc:
            return Refused(exc.reason)

    # Reading: every failure is an ImageRejected with a reason a person can act on.

    def read(self, item: IngestItem) -> bytes:
        if item.data is not None:
            self._check_size(len(item.data))
            return item.data
        if item.url is not None:
            return self._fetch(item.url)
        if item.zip_path is not None and item.member is not None:
            return self._read_member(item.zip_path, item.member)
        if item.path is not None:
            return self._read_file(item.path)
        raise ImageRejected("nothing to read: no path, URL or data")

    def _check_size(self, size: int) -> None:
        if size > self.config.max_bytes:
            limit = self.config.max_bytes / 1e6
            raise ImageRejected(f"too large: {size / 1e6:.1f} MB exceeds the limit of {limit:g} MB")

    def _read_file(self, path: Path) -> bytes:
        try:
            with path.open("rb") as handle:
                self._check_size(os.fstat(handle.fileno()).st_size)
                return handle.read()
        except FileNotFoundError:
            if path.is_symlink():
                raise ImageRejected("cannot read: broken symbolic link") from None
            raise ImageRejected("cannot read: file not found") from None
        except IsADirectoryError:
            raise ImageRejected("cannot read: it is a folder, not a file") from None
        except PermissionError:
            raise ImageRejected("cannot read: permission denied") from None
        except OSError as exc:
            raise ImageRejected(f"cannot read: {exc.strerror or exc}") from None

    def _read_member(self, zip_path: Path, member: str) -> bytes:
        try:
            opened: tuple[Path, zipfile.ZipFile] | None = getattr(self._local, "zip", None)
            if opened is None or opened[0] != zip_path:
                if opened is not None:
                    opened[1].close()
                opened = self._local.zip = (zip_path, zipfile.ZipFile(zip_path))
            archive = opened[1]
            self._check_size(archive.getinfo(member).file_size)
            with archive.open(member) as handle:
                data = handle.read(self.config.max_bytes + 1)  # the header's size may lie
            self._check_size(len(data))
            return data
        except KeyError:
            raise ImageRejected("cannot read: not in the archive") from None
        except (OSError, zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
            # RuntimeError: encrypted member; NotImplementedError: unknown compression.
            raise ImageRejected(f"cannot read from the archive: {exc}") from None

    def _client(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(
                    timeout=self.config.fetch_timeout,
                    follow_redirects=False,  # followed in _fetch, each hop checked by url_guard
                    headers={"User-Agent": "voicecap-ingest"},
                )
            return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _fetch(self, url: str) -> bytes:
        try:
            for _hop in range(url_guard.MAX_REDIRECTS + 1):
                url_guard.check_url(url, self.config.allow_private_urls)
                with self._client().stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    return self._body(response)
            raise ImageRejected(f"download failed: more than {url_guard.MAX_REDIRECTS} redirects")
        except url_guard.UrlRefused as exc:
            raise ImageRejected(f"URL refused: {exc}") from None
        except httpx.TimeoutException:
            raise ImageRejected(f"download failed: timed out after {self.config.fetch_timeout:g} s") from None
        except httpx.ConnectError as exc:
            raise ImageRejected(f"download failed: cannot connect ({exc})") from None
        except httpx.HTTPError as exc:
            raise ImageRejected(f"download failed: {exc}") from None

    def _body(self, response: httpx.Response) -> bytes:
        if response.status_code != 200:
            raise ImageRejected(f"download failed: HTTP {response.status_code} {response.reason_phrase}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit():
            self._check_size(int(declared))
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            self._check_size(size)
            chunks.append(chunk)
        return b"".join(chunks)


class _Pipeline:
    """Runs items through a thread pool (or inline) with a bounded window, yielding in input order.

    Threads, not processes: Pillow releases the GIL while it decodes, resizes and encodes, hashlib
    while it hashes and the OS calls while they read and fsync, which is nearly all of an item's time.
    Measured on 2 cores, threads reach the throughput of a process pool while the whole run stays one
    process: no process start-up, no re-import of the CLI in each process, a third of the memory.
    """

    def __init__(self, storer: _ImageStorer, workers: int) -> None:
        self.storer = storer
        self.window = max(2, workers * IN_FLIGHT_PER_WORKER)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ingest") if workers > 1 else None

    def run(self, items: Iterable[IngestItem]) -> Iterator[tuple[IngestItem, Outcome]]:
        if self._pool is None:
            for item in items:
                yield item, Refused(item.error) if item.error else self.storer.process(item)
            return
        pending: deque[tuple[IngestItem, Future[Outcome] | Outcome]] = deque()
        iterator = iter(items)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < self.window:
                item = next(iterator, None)
                if item is None:
                    exhausted = True
                elif item.error:
                    pending.append((item, Refused(item.error)))
                else:
                    pending.append((item, self._pool.submit(self.storer.process, item)))
            if pending:
                item, outcome = pending.popleft()
                yield item, outcome.result() if isinstance(outcome, Future) else outcome

    def close(self) -> None:
        if self._pool is not None:
            # On Ctrl-C: drop what has not started, let the few running items finish.
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.storer.close()


# -------------------------------------------------------------------------------------- main side


def resolve_workers(settings: Settings) -> int:
    if settings.ingest_workers > 0:
        return settings.ingest_workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1  # one more than the cores: a thread waiting on a read or fsync leaves a core idle


def _known_digests(sessions: sessionmaker[Session], project_id: int) -> bytes:
    with sessions() as session:
        shas = session.scalars(select(Image.sha256).where(Image.project_id == project_id)).all()
    return b"".join(sorted(bytes.fromhex(sha) for sha in shas))


class _Report:
    """The --report file: one JSON line per rejection, written as they happen (a killed run keeps them)."""

    def __init__(self, path: Path | None) -> None:
        self._handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("w", encoding="utf-8")

    def write(self, rejection: Rejection) -> None:
        if self._handle is not None:
            self._handle.write(json.dumps(rejection.to_json(), ensure_ascii=False) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class _RowWriter:
    """Inserts Image rows in batches; a row whose hash is already in the project is a duplicate."""

    def __init__(self, sessions: sessionmaker[Session], project_id: int, summary: IngestSummary) -> None:
        self.sessions = sessions
        self.project_id = project_id
        self.summary = summary
        self.rows: list[dict[str, Any]] = []
        self.seen: set[str] = set()  # hashes added or queued by this run
        self.last_flush = time.monotonic()

    def add(self, item: IngestItem, stored: Stored) -> None:
        if stored.sha256 in self.seen:
            self.summary.duplicate += 1
            return
        self.seen.add(stored.sha256)
        meta = dict(item.meta)
        if stored.orientation != 1:
            meta["exif_orientation"] = stored.orientation  # width/height are already as displayed
        now = utcnow()
        self.rows.append(
            {
                "project_id": self.project_id,
                "sha256": stored.sha256,
                "source": item.source,
                "blob_key": stored.blob_key,
                "thumb_key": stored.thumb_key,
                "width": stored.width,
                "height": stored.height,
                "format": stored.format,
                "meta": meta,
                "labels": item.labels,
                "done_count": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(self.rows) >= ROW_BATCH or time.monotonic() - self.last_flush > BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.rows:
            return
        with self.sessions() as session:
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            statement = (
                insert(Image)
                .values(self.rows)
                .on_conflict_do_nothing(index_elements=["project_id", "sha256"])
                .returning(Image.sha256)
            )
            inserted = len(session.scalars(statement).all())
            summaries.images_changed(session, self.project_id, slot=0, images=inserted)
            session.commit()
        self.summary.added += inserted
        self.summary.duplicate += len(self.rows) - inserted  # added meanwhile by another ingest
        self.rows = []


def ingest(
    db: Engine | sessionmaker[Session],
    blobs: Blobs,
    settings: Settings,
    project: Project | int,
    items: Iterable[IngestItem],
    progress: Callable[[int, int | None], None] | None = None,
    report_path: Path | None = None,
    *,
    total: int | None = None,
    workers: int | None = None,
) -> IngestSummary:
    """Ingest `items` into `project`; bad items are rejected with a reason, never raised.

    `progress(done, total)` is called after each item. `workers` defaults to resolve_workers().
    Interrupted (Ctrl-C) or failing on a database error, it keeps the rows of finished items if it can.
    """
    sessions = db if isinstance(db, sessionmaker) else sessionmaker(bind=db, expire_on_commit=False)
    project_id = project if isinstance(project, int) else project.id
    started = time.monotonic()
    config = StorerConfig(
        max_pixels=settings.max_image_pixels,
        max_bytes=int(settings.max_image_mb * 1_000_000),
        fetch_timeout=settings.fetch_timeout_seconds,
        known=_known_digests(sessions, project_id),
        allow_private_urls=settings.ingest_allow_private_urls,
    )
    items = _labels_required(sessions, project_id, items)
    summary = IngestSummary()
    writer = _RowWriter(sessions, project_id, summary)
    report = _Report(report_path)
    storer = _ImageStorer(config, blobs)
    pipeline = _Pipeline(storer, workers if workers is not None else resolve_workers(settings))
    done = 0
    try:
        for item, outcome in pipeline.run(items):
            if isinstance(outcome, Stored):
                writer.add(item, outcome)
            elif isinstance(outcome, Known):
                summary.duplicate += 1
            else:
                rejection = Rejection(item.source, outcome.reason)
                summary.rejected.append(rejection)
                report.write(rejection)
            done += 1
            if progress is not None:
                progress(done, total)
        writer.flush()
    except BaseException:
        # Ctrl-C or a database error: keep what was finished if the database still lets us.
        with contextlib.suppress(Exception):
            writer.flush()
        raise
    finally:
        pipeline.close()
        report.close()
    summary.seconds = time.monotonic() - started
    return summary


def _labels_required(
    sessions: sessionmaker[Session], project_id: int, items: Iterable[IngestItem]
) -> Iterable[IngestItem]:
    """A point project without labels of its own takes only images that bring theirs."""
    with sessions() as session:
        mode, labels = session.execute(
            select(Project.mode, Project.labels).where(Project.id == project_id)
        ).one()
    if mode is not ProjectMode.point or labels:
        return items
    return (_needs_labels(item) for item in items)


def _needs_labels(item: IngestItem) -> IngestItem:
    if item.error is None and not item.labels:
        item.error = (
            "no labels: this point project has no labels of its own, so each image needs a "
            "`labels` column in the manifest"
        )
    return item


def ingest_source(
    db: Engine | sessionmaker[Session],
    blobs: Blobs,
    settings: Settings,
    project: Project | int,
    source: str,
    progress: Callable[[int, int | None], None] | None = None,
    report_path: Path | None = None,
    *,
    workers: int | None = None,
) -> IngestSummary:
    """items_from_source + ingest, with the total counted first for the progress bar."""
    total = count_items(source)
    return ingest(
        db,
        blobs,
        settings,
        project,
        items_from_source(source),
        progress,
        report_path,
        total=total,
        workers=workers,
    )


def ingest_bytes(
    db: Engine | sessionmaker[Session],
    blobs: Blobs,
    settings: Settings,
    project: Project | int,
    files: Iterable[tuple[str, bytes]],
) -> IngestSummary:
    """For uploads (the admin page): (file name, bytes) pairs, ingested in this process."""
    items = (IngestItem(source=name, data=data) for name, data in files)
    return ingest(db, blobs, settings, project, items, workers=1)


def summary_text(summary: IngestSummary) -> str:
    """One line for logs and flash messages."""
    return f"{summary.added} added, {summary.duplicate} duplicate, {len(summary.rejected)} rejected" + (
        f" ({', '.join(f'{n} {k}' for k, n in summary.reasons().items())})" if summary.rejected else ""
    )
