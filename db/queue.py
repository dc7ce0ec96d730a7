"""State is the queue: workers claim Recording rows with one statement and hold them on a lease.

A claim is a single ``UPDATE … WHERE id IN (SELECT … [FOR UPDATE SKIP LOCKED]) RETURNING id``: on
PostgreSQL concurrent claimers skip each other's locked rows; on SQLite the statement runs inside a
``BEGIN IMMEDIATE`` transaction (see db.session), so claimers are serialised. Every later write is fenced
by ``claimed_by``: a worker whose lease expired and was re-claimed by another cannot overwrite its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from db import summaries
from db.models import Recording, RecordingStatus, utcnow


@dataclass(frozen=True)
class Stage:
    name: str
    ready: RecordingStatus
    working: RecordingStatus
    done: RecordingStatus


STAGES: dict[str, Stage] = {
    "transcribe": Stage(
        "transcribe", RecordingStatus.uploaded, RecordingStatus.transcribing, RecordingStatus.transcribed
    ),
    "clean": Stage("clean", RecordingStatus.transcribed, RecordingStatus.cleaning, RecordingStatus.captioned),
}


def get_stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from None


def expire_leases(session: Session, stage: Stage, max_attempts: int, now: datetime | None = None) -> int:
    """Return rows whose worker vanished to the pool, or fail them once attempts are used up."""
    now = now or utcnow()
    expired = and_(Recording.status == stage.working, Recording.lease_until < now)
    failed = (
        session.execute(
            update(Recording)
            .where(expired, Recording.attempts >= max_attempts)
            .values(
                status=RecordingStatus.failed,
                last_error=f"{stage.name}: lease expired after {max_attempts} attempts (worker died or hung)",
                claimed_by=None,
                lease_until=None,
            )
            .returning(Recording.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    summaries.takes_died(session, failed)
    returned = session.execute(
        update(Recording)
        .where(expired)
        .values(status=stage.ready, claimed_by=None, lease_until=None, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return len(failed) + (returned or 0)


def claim(
    session: Session,
    stage: Stage,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    max_attempts: int,
    project_id: int | None = None,
) -> list[int]:
    """Claim up to ``limit`` ready rows for ``worker_id``; the caller commits. Returns their ids."""
    now = utcnow()
    expire_leases(session, stage, max_attempts, now)
    candidates = (
        select(Recording.id)
        .where(Recording.status == stage.ready, Recording.next_attempt_at <= now)
        .order_by(Recording.next_attempt_at, Recording.id)
        .limit(limit)
    )
    if project_id is not None:
        candidates = candidates.where(Recording.project_id == project_id)
    if session.get_bind().dialect.name == "postgresql":
        # MATERIALIZED: the planner must pick the rows once; an inlined LIMIT … SKIP LOCKED subquery
        # can be re-evaluated per outer row and claim more than `limit`.
        picked = candidates.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    else:
        picked = candidates.cte("picked")
    result = session.execute(
        update(Recording)
        .where(Recording.id.in_(select(picked.c.id)), Recording.status == stage.ready)
        .values(
            status=stage.working,
            claimed_by=worker_id,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=Recording.attempts + 1,
        )
        .returning(Recording.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars().all())


def heartbeat(session: Session, stage: Stage, worker_id: str, ids: list[int], lease_seconds: float) -> int:
    """Extend the lease of rows this worker still holds; returns how many it still holds."""
    if not ids:
        return 0
    result = session.execute(
        update(Recording)
        .where(Recording.id.in_(ids), Recording.status == stage.working, Recording.claimed_by == worker_id)
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def complete(session: Session, stage: Stage, worker_id: str, recording_id: int) -> bool:
    """Mark a claimed row done. False means the lease was lost: the caller must roll back its writes."""
    result = session.execute(
        update(Recording)
        .where(
            Recording.id == recording_id,
            Recording.status == stage.working,
            Recording.claimed_by == worker_id,
        )
        .values(status=stage.done, claimed_by=None, lease_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1


def fail(
    session: Session,
    stage: Stage,
    worker_id: str,
    recording_id: int,
    error: str,
    max_attempts: int,
    backoff_seconds: float,
    permanent: bool = False,
) -> RecordingStatus | None:
    """Record a failed attempt: back to the pool after an exponential backoff, or ``failed`` for good.

    Returns the new status, or None when this worker no longer holds the row.
    """
    row = session.execute(
        select(Recording.attempts).where(
            Recording.id == recording_id,
            Recording.status == stage.working,
            Recording.claimed_by == worker_id,
        )
    ).first()
    if row is None:
        return None
    attempts = row[0]
    give_up = permanent or attempts >= max_attempts
    status = RecordingStatus.failed if give_up else stage.ready
    delay = timedelta(seconds=backoff_seconds * (2 ** max(attempts - 1, 0)))
    session.execute(
        update(Recording)
        .where(Recording.id == recording_id, Recording.claimed_by == worker_id)
        .values(
            status=status,
            last_error=f"{stage.name} attempt {attempts}: {error}"[:4000],
            claimed_by=None,
            lease_until=None,
            next_attempt_at=utcnow() + delay,
        )
        .execution_options(synchronize_session=False)
    )
    if give_up:
        summaries.takes_died(session, [recording_id])
    return status


def requeue_failed(session: Session, stage: Stage | None = None, project_id: int | None = None) -> int:
    """Send failed rows back to the stage they failed in, with fresh attempts.

    The stage is read from last_error's prefix ("transcribe …" / "clean …"); without one, transcription.
    """
    query = select(Recording).where(Recording.status == RecordingStatus.failed)
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    count = 0
    for recording in session.scalars(query):
        failed_in = _failed_stage(recording.last_error)
        if stage is not None and failed_in is not stage:
            continue
        recording.status = failed_in.ready
        recording.attempts = 0
        recording.next_attempt_at = utcnow()
        count += 1
    return count


def _failed_stage(error: str | None) -> Stage:
    for stage in STAGES.values():
        if error and error.startswith(stage.name):
            return stage
    return STAGES["transcribe"]


def _outstanding(stage: Stage, project_id: int | None) -> ColumnElement[bool]:
    """Rows a stage still has to do: ready (now or after a backoff) or leased by any worker."""
    condition = Recording.status.in_([stage.ready, stage.working])
    if project_id is not None:
        condition = and_(condition, Recording.project_id == project_id)
    return condition


def outstanding(session: Session, stage: Stage, project_id: int | None = None) -> int:
    """How many rows the stage still has to do (a draining worker waits until none)."""
    return int(session.scalar(select(func.count()).where(_outstanding(stage, project_id))) or 0)


def backlog(session: Session, stage: Stage, project_id: int | None = None) -> tuple[int, float]:
    """Rows a stage still has to do and their seconds of audio (for a progress bar's total)."""
    query = select(func.count(), func.coalesce(func.sum(Recording.duration_seconds), 0.0))
    count, seconds = session.execute(query.where(_outstanding(stage, project_id))).one()
    return int(count), float(seconds)


def counts_by_status(session: Session, project_id: int | None = None) -> dict[str, int]:
    query = select(Recording.status, func.count()).group_by(Recording.status)
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    counts = {status.value: 0 for status in RecordingStatus}
    for status, count in session.execute(query):
        counts[RecordingStatus(status).value] = count
    return counts
