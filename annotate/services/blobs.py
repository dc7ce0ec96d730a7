"""Blob store maintenance: copy a store into another (`voicecap blobs migrate`) and find missing or
orphaned blobs (`voicecap blobs check`).

Keys are content addresses (`ab/cd/<sha256><suffix>`), so a copy verifies itself: the target store
hashes the bytes while they stream in, and the key it returns must be the key we copied. A copy that
is interrupted is resumed by running it again; blobs already in the target are skipped.

Both jobs hold the sets of keys in memory (about 100 bytes a key: ~1 GB at ten million blobs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotate.errors import InvalidInput
from db.blobstore import CHUNK, Blobs, key_for
from db.models import Image, Recording

SAMPLE = 20  # keys shown in a report


@dataclass
class MigrateReport:
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    corrupt: list[str] = field(default_factory=list)


def _suffix_of(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    sha = name[:64]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha) or key_for(sha, name[64:]) != key:
        raise InvalidInput(f"blob {key!r} is not content-addressed; the source is not a voicecap store")
    return name[64:]


def _chunks(blobs: Blobs, key: str) -> Iterator[bytes]:
    with blobs.open(key) as handle:
        yield from iter(lambda: handle.read(CHUNK), b"")


def migrate_blobs(
    source: Blobs, target: Blobs, progress: Callable[[int], None] | None = None
) -> MigrateReport:
    """Copy every blob of `source` that `target` lacks; a blob whose bytes no longer match its key
    is reported as corrupt and not copied (the target deletes nothing it already had)."""
    if source.url == target.url:
        raise InvalidInput(f"source and target are the same store ({source.url})")
    report = MigrateReport()
    present = {entry.key: entry.size for entry in target.entries()}
    for entry in source.entries():
        if present.get(entry.key) == entry.size:
            report.skipped += 1
        else:
            key, _ = target.put_stream(_chunks(source, entry.key), suffix=_suffix_of(entry.key))
            if key != entry.key:
                # The source bytes changed on disk: keep the target free of a blob under a wrong name.
                if key not in present:
                    target.delete(key)
                report.corrupt.append(entry.key)
            else:
                report.copied += 1
                report.bytes_copied += entry.size
        if progress is not None:
            progress(1)
    return report


@dataclass
class CheckReport:
    referenced: int = 0
    stored: int = 0
    missing: int = 0
    orphans: int = 0
    swept: int = 0
    temporaries_swept: int = 0
    missing_sample: list[str] = field(default_factory=list)
    orphan_sample: list[str] = field(default_factory=list)


def referenced_keys(session: Session) -> set[str]:
    keys: set[str] = set()
    for column in (Image.blob_key, Image.thumb_key, Recording.original_key, Recording.wav_key):
        keys.update(k for k in session.scalars(select(column).execution_options(yield_per=10_000)) if k)
    return keys


def check_blobs(
    session: Session, blobs: Blobs, *, sweep: bool = False, grace: timedelta = timedelta(hours=24)
) -> CheckReport:
    """Compare the keys rows name with the blobs stored. With `sweep`, delete orphans (and leftovers of
    interrupted uploads) older than `grace`: a younger one may belong to an upload whose row is about to
    be committed."""
    if grace < timedelta(0):
        raise InvalidInput("the grace period cannot be negative")
    referenced = referenced_keys(session)
    cutoff = datetime.now(UTC) - grace
    report = CheckReport(referenced=len(referenced))
    stored: set[str] = set()
    for entry in blobs.entries():
        stored.add(entry.key)
        if entry.key in referenced:
            continue
        report.orphans += 1
        if len(report.orphan_sample) < SAMPLE:
            report.orphan_sample.append(entry.key)
        if sweep and entry.modified < cutoff and _still_orphan(session, entry.key):
            blobs.delete(entry.key)
            report.swept += 1
    report.stored = len(stored)
    missing = sorted(referenced - stored)
    report.missing = len(missing)
    report.missing_sample = missing[:SAMPLE]
    if sweep:
        report.temporaries_swept = blobs.sweep_temporaries(cutoff)
    return report


def _still_orphan(session: Session, key: str) -> bool:
    """Ask again right before deleting: a row may have been committed since the keys were read."""
    session.rollback()  # a fresh snapshot
    image = select(Image.id).where((Image.blob_key == key) | (Image.thumb_key == key)).limit(1)
    take = select(Recording.id).where((Recording.original_key == key) | (Recording.wav_key == key)).limit(1)
    return session.scalar(image) is None and session.scalar(take) is None
