"""State is the queue: workers claim Recording rows in one short transaction and hold them on a lease.

A claim is ``SELECT … [FOR UPDATE SKIP LOCKED]`` of the oldest ready rows, then ``UPDATE … WHERE id IN
(…) RETURNING id`` of the ones that may share a batch (an isolated row goes alone): on PostgreSQL
concurrent claimers skip each other's locked rows; on SQLite the transaction is ``BEGIN IMMEDIATE``
(see db.session), so claimers are serialised. Every later write is fenced
by ``claimed_by``: a worker whose lease expired and was re-claimed by another cannot overwrite its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Row, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from db import summaries
from db.models import Project, Recording, RecordingStatus, utcnow


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


def expire_leases(session: Session, stage: Stage, max_crashes: int, now: datetime | None = None) -> int:
    """Return rows whose worker died (or hung) to the pool; fail a row that keeps killing its worker.

    A crash is never an error of the row: its batch-mates, or the machine being preempted, may be to
    blame. So a row whose batch died is returned *isolated*: from now on it is claimed on its own, and
    only a crash while isolated counts against it (`crashes_alone`); at `max_crashes` of those it fails.
    """
    now = now or utcnow()
    expired = and_(Recording.status == stage.working, Recording.lease_until < now)
    failed = (
        session.execute(
            update(Recording)
            .where(expired, Recording.isolated, Recording.crashes_alone + 1 >= max_crashes)
            .values(
                status=RecordingStatus.failed,
                crashes=Recording.crashes + 1,
                crashes_alone=Recording.crashes_alone + 1,
                last_error=(
                    f"{stage.name}: its worker died {max_crashes} times while processing this recording on "
                    "its own (lease expired each time): it likely crashes the worker; see the worker's log"
                ),
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
        .values(
            status=stage.ready,
            crashes=Recording.crashes + 1,
            crashes_alone=Recording.crashes_alone + case((Recording.isolated, 1), else_=0),
            isolated=True,
            claimed_by=None,
            lease_until=None,
            next_attempt_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return len(failed) + (returned or 0)


def claim(
    session: Session,
    stage: Stage,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    max_crashes: int,
    project_id: int | None = None,
    languages: Sequence[str] | None = None,
) -> list[int]:
    """Claim up to ``limit`` ready rows for ``worker_id``; the caller commits. Returns their ids.

    The oldest ready rows, in order; an isolated row (its batch died with its worker) is claimed on its
    own, so the batch stops before one, and a claim that would start with one takes only that row.

    ``languages``: only rows of projects in these languages (an English-only model's worker).
    """
    now = utcnow()
    expire_leases(session, stage, max_crashes, now)
    candidates = (
        select(Recording.id, Recording.isolated)
        .where(Recording.status == stage.ready, Recording.next_attempt_at <= now)
        .order_by(Recording.next_attempt_at, Recording.id)
        .limit(limit)
    )
    if project_id is not None:
        candidates = candidates.where(Recording.project_id == project_id)
    if languages is not None:
        candidates = candidates.where(in_languages(languages))
    if session.get_bind().dialect.name == "postgresql":
        # Locked until the caller commits; rows another claimer holds locked are skipped, not waited on.
        candidates = candidates.with_for_update(skip_locked=True)
    picked = _batch_of(session.execute(candidates).all())
    if not picked:
        return []
    result = session.execute(
        update(Recording)
        .where(Recording.id.in_(picked), Recording.status == stage.ready)
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


def _batch_of(candidates: Sequence[Row[tuple[int, bool]]]) -> list[int]:
    """The leading rows that may share a batch: an isolated first row alone, else up to an isolated one."""
    if candidates and candidates[0].isolated:
        return [candidates[0].id]
    batch: list[int] = []
    for candidate in candidates:
        if candidate.isolated:
            break
        batch.append(candidate.id)
    return batch


def in_languages(languages: Sequence[str]) -> ColumnElement[bool]:
    """Recordings of projects in one of `languages`: "en" also matches "en-GB" (and "" for English)."""
    codes = [code.lower() for code in languages]
    language = func.lower(Project.language)
    matches = [
        language.in_(codes + ([""] if "en" in codes else [])),
        *(language.like(f"{c}-%") for c in codes),
    ]
    return Recording.project_id.in_(select(Project.id).where(or_(*matches)))


def backlog_by_language(session: Session, stage: Stage, project_id: int | None = None) -> dict[str, int]:
    """Rows the stage still has to do (ready or leased), per project language."""
    query = (
        select(Project.language, func.count())
        .join(Recording, Recording.project_id == Project.id)
        .where(Recording.status.in_([stage.ready, stage.working]))
        .group_by(Project.language)
    )
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    return {language: int(count) for language, count in session.execute(query).all()}


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
        # Isolation is about this stage's batches; the next stage batches the row again.
        .values(status=stage.done, claimed_by=None, lease_until=None, last_error=None, isolated=False)
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
    """Record an error (the processor raised): back to the pool after an exponential backoff, or
    ``failed`` for good once ``max_attempts`` errors are used up. Crashes are not errors (see
    expire_leases) and do not use up attempts.

    Returns the new status, or None when this worker no longer holds the row.
    """
    row = session.execute(
        select(Recording.attempts, Recording.errors).where(
            Recording.id == recording_id,
            Recording.status == stage.working,
            Recording.claimed_by == worker_id,
        )
    ).first()
    if row is None:
        return None
    attempts, errors = row[0], row[1] + 1
    give_up = permanent or errors >= max_attempts
    status = RecordingStatus.failed if give_up else stage.ready
    delay = timedelta(seconds=backoff_seconds * (2 ** (errors - 1)))
    session.execute(
        update(Recording)
        .where(Recording.id == recording_id, Recording.claimed_by == worker_id)
        .values(
            status=status,
            errors=errors,
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
        fresh_budget(recording)
        recording.next_attempt_at = utcnow()
        count += 1
    return count


def fresh_budget(recording: Recording) -> None:
    """A fresh start for a row sent back to a stage by hand: no errors or crashes held against it.

    `crashes` stays (it is history), and so does `isolated`: a row that crashed workers is tried alone.
    """
    recording.attempts = 0
    recording.errors = 0
    recording.crashes_alone = 0


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


def outstanding(
    session: Session, stage: Stage, project_id: int | None = None, languages: Sequence[str] | None = None
) -> int:
    """How many rows the stage still has to do (a draining worker waits until none).

    ``languages``: count only rows of projects in these languages (the rows such a worker may claim).
    """
    query = select(func.count()).where(_outstanding(stage, project_id))
    if languages is not None:
        query = query.where(in_languages(languages))
    return int(session.scalar(query) or 0)


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
