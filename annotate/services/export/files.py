"""The files of an export directory: preparing it, writing a file while hashing it, zipping the result.

Every finished name is given by db.files (fsynced temp file, rename, fsync of the directory), so a crash
at any point leaves no half file under a finished name.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

from annotate.errors import Conflict
from annotate.services.export.selection import SPLITS
from db.files import atomic_write, publish

FORMATS: tuple[str, ...] = ("jsonl", "parquet", "localized-narratives", "pixmo-points")
CARD = "README.md"
MANIFEST = "manifest.json"
MEDIA_LIST = "media.sha256"


class HashingFile:
    """A `.tmp` file that hashes what is written and gets its final name only by publish()."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + ".tmp")
        self.handle: BinaryIO = self.tmp.open("wb", buffering=1024 * 1024)
        self.digest = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self.bytes += len(data)

    def append_file(self, path: Path) -> None:
        """Append another file's bytes (a part builder's part), hashing them on the way."""
        with path.open("rb") as part:
            for chunk in iter(lambda: part.read(1024 * 1024), b""):
                self.write(chunk)
        path.unlink()

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()

    def sha256(self) -> str:
        return self.digest.hexdigest()

    def publish(self) -> None:
        """Give the closed (fsynced) file its final name."""
        publish(self.tmp, self.final)

    def discard(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.tmp.unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_file(out_dir: Path, split: str, fmt: str) -> Path:
    if fmt in ("localized-narratives", "pixmo-points"):
        return out_dir / f"{split}.{fmt.replace('-', '_')}.jsonl"
    return out_dir / f"{split}.{fmt}"


def prepare_dir(out_dir: Path, overwrite: bool) -> None:
    """Create out_dir, or empty it of an earlier export's files (only with overwrite) and of temp files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    finished = [p.name for p in out_dir.iterdir() if not p.name.endswith(".tmp")]
    if finished and not overwrite:
        raise Conflict(f"{out_dir} is not empty ({', '.join(sorted(finished)[:5])}…); pass --overwrite.")
    # The manifest goes first: files left from the old export are no longer vouched for.
    (out_dir / MANIFEST).unlink(missing_ok=True)
    for split in SPLITS:
        for fmt in FORMATS:
            split_file(out_dir, split, fmt).unlink(missing_ok=True)
    (out_dir / MEDIA_LIST).unlink(missing_ok=True)
    (out_dir / CARD).unlink(missing_ok=True)
    for stale in out_dir.glob("*.tmp"):
        stale.unlink()


def zip_directory(directory: Path, target: Path) -> None:
    """Zip an export directory (JSONL deflated, Parquet and media stored as they are), atomically."""
    with atomic_write(target, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            packed = path.suffix in {".jsonl", ".json", ".sha256", ".md"}
            archive.write(
                path,
                path.relative_to(directory).as_posix(),
                compress_type=zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED,
            )
