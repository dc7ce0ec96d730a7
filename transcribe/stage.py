"""What a worker stage plugs into the worker loop (transcribe/worker.py).

The loop owns claiming, leases, heartbeats, completion and failure; a stage only says how to read its
inputs, do its work and write its results. The three calls are split by transaction:

- ``load`` runs in a short read transaction right after the claim and returns plain inputs;
- ``process`` runs outside any transaction (it may take minutes) and must not touch the database;
- ``store`` runs inside the transaction that also marks the row done, so a result and its state change
  commit together or not at all.

A stage may also offer ``sweep(factory, project_id) -> dict[str, float]``, run when the worker is idle
after the stage finished rows (the clean stage writes per-image merged captions there), and
``close()``, called by whoever built it when the worker is done.

An input or output that is an ``Exception`` fails that one recording; a ``PermanentError`` fails it for
good on the first attempt (a corrupt file will not decode on the third try either).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.orm import Session


class PermanentError(Exception):
    """Retrying will not help: the recording goes straight to `failed` with this message."""


@runtime_checkable
class StageProcessor(Protocol):
    """One stage of the pipeline ("transcribe", "clean"), as seen by the worker loop."""

    #: a key of db.queue.STAGES
    stage: str
    # A processor may also set `min_batch_size`: the worker then claims at least that many rows a batch.

    def load(self, session: Session, recording_ids: list[int]) -> dict[int, Any | Exception]:
        """Read what `process` needs for each claimed recording (detached, plain data)."""
        ...

    def process(self, inputs: Mapping[int, Any]) -> dict[int, Any | Exception]:
        """Do the work for a batch, outside any transaction; one output or Exception per id."""
        ...

    def store(self, session: Session, recording_id: int, item: Any, output: Any) -> None:
        """Add the result rows for one recording; the caller completes the row in the same transaction.

        Must skip rows that already exist (a job done twice stores one result).
        """
        ...

    def already_stored(self, session: Session, recording_id: int, item: Any) -> bool:
        """Whether this recording's result is already in the database (someone else finished it)."""
        ...

    def units(self, item: Any, output: Any) -> dict[str, float]:
        """Figures for progress and throughput, e.g. audio_seconds or prompt_tokens."""
        ...


def describe_error(error: BaseException) -> str:
    """One line for Recording.last_error: the type and message, never a traceback."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
