"""Crash-safe file writes: a reader sees the old file or the whole new one, never a partial one.

Every file voicecap writes that someone may read after a crash (blobs, exports, manifests, secrets) goes
through here: write under a temporary name in the same folder, fsync it, rename it over the target, then
fsync the folder so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path | str, target: Path) -> None:
    """Give an already fsynced temporary file its final name, durably."""
    os.replace(tmp, target)
    fsync_dir(target.parent)


@contextmanager
def atomic_write(
    target: Path,
    mode: str = "w",
    *,
    encoding: str = "utf-8",
    file_mode: int | None = None,
    keep_existing: bool = False,
) -> Iterator[IO[Any]]:
    """`with atomic_write(path) as handle: handle.write(...)`: the file appears complete, or not at all.

    `mode` is "w" (text) or "wb". `file_mode` (e.g. 0o600 for a secret) is set on the temporary file
    before anything is written, so the content is never readable by others, not even for a moment.
    `keep_existing`: if the target appears meanwhile (another process won a race to create it), keep
    that file and drop this one, so every process ends up reading the same content.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if file_mode is not None:
            os.fchmod(fd, file_mode)
        text = "b" not in mode
        with os.fdopen(fd, mode, encoding=encoding if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if keep_existing:
            with contextlib.suppress(FileExistsError):
                os.link(tmp_name, target)  # never replaces: the first complete file wins
            Path(tmp_name).unlink()
            fsync_dir(target.parent)
        else:
            publish(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
