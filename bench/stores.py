"""Blob stores for the benches: the local folder, or a bucket on a SeaweedFS server started for the run
(the same server the tests use), so one run compares both on the same machine."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.seaweed import Seaweed, running_seaweed  # noqa: E402

STORES = ("local", "s3")


@contextmanager
def object_store(stores: list[str]) -> Iterator[Seaweed | None]:
    """A SeaweedFS server when "s3" is among `stores`; its AWS_* variables are set in os.environ, so
    this process and the voicecap processes it starts reach it the standard way."""
    unknown = set(stores) - set(STORES)
    if unknown:
        raise SystemExit(f"unknown store(s) {sorted(unknown)}: use {', '.join(STORES)}")
    with ExitStack() as stack:
        seaweed = stack.enter_context(running_seaweed()) if "s3" in stores else None
        if seaweed is not None:
            os.environ.update(seaweed.env())
        yield seaweed


def blob_url(store: str, seaweed: Seaweed | None, workdir: Path) -> str:
    """Where this run's blobs go: a fresh bucket, or a folder in the run's temp dir."""
    if store == "s3":
        assert seaweed is not None
        return f"s3://{seaweed.new_bucket()}/blobs"
    return str(workdir / "blobs")
