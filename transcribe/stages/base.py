"""What a processor plugs into the worker loop (transcribe/worker.py).

Vocabulary: a *stage* is a `db.queue.Stage` (the ready → working → done statuses a recording moves
through); a *processor* is the object the worker drives to do one stage's work; a *sweep* is follow-up
work a processor offers for the worker to run when it is idle (the clean processor's merged captions).

The loop owns claiming, leases, heartbeats, completion and failure; a processor only says how to read
its inputs, do its work and write its results. The three calls are split by transaction:

- ``load`` runs in a short read transaction right after the claim and returns plain inputs;
- ``process`` runs outside any transaction (it may take minutes) and must not touch the database;
- ``store`` runs inside the transaction that also marks the row done, so a result and its state change
  commit together or not at all.

An input or output that is an ``Exception`` fails that one recording; a ``PermanentError`` fails it for
good on the first attempt (a corrupt file will not decode on the third try either).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.orm import Session, sessionmaker

from db.queue import Stage


class PermanentError(Exception):
    """Retrying will not help: the recording goes straight to `failed` with this message."""


class Sweep(Protocol):
    """Work that is not a queue job: run by the worker when it is idle after its processor finished rows.

    Must be safe to run again at any time (it finds its own work and writes idempotently).
    """

    def run(self, factory: sessionmaker[Session], project_id: int | None) -> dict[str, float]:
        """Do the follow-up work in its own short transactions; figures for progress, like `units`."""
        ...


@runtime_checkable
class StageProcessor(Protocol):
    """The worker's view of one stage ("transcribe", "clean") of the pipeline."""

    #: the queue stage whose rows this processor claims (a value of db.queue.STAGES)
    stage: Stage
    #: the worker claims at least this many rows a batch (0: the configured batch size stands)
    min_batch_size: int
    #: follow-up work for the worker's idle time, or None
    sweep: Sweep | None
    #: only takes of projects in these languages (an English-only model's), or None for every language
    claim_languages: Sequence[str] | None

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

    def close(self) -> None:
        """Release what the processor holds (an HTTP client); called by whoever built it."""
        ...


def describe_error(error: BaseException) -> str:
    """One line for Recording.last_error: the type and message, never a traceback."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
