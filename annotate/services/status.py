"""The pipeline at a glance: recordings per state, throughput, the oldest waiting job, tokens, failures.

`voicecap status` prints it; `voicecap status --json` prints `pipeline_status(...)` as is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db import queue
from db.models import Caption, CaptionKind, Image, Recording, RecordingStatus, Transcript, utcnow
from db.settings import Settings
from transcribe.usage import estimate_cost, token_totals

WINDOWS = {"last_hour": timedelta(hours=1), "last_day": timedelta(days=1)}


def pipeline_status(
    session: Session, settings: Settings, project_id: int | None = None, failures: int = 10
) -> dict[str, Any]:
    now = utcnow()
    return {
        "recordings": queue.counts_by_status(session, project_id),
        "throughput": {name: _throughput(session, now - span, project_id) for name, span in WINDOWS.items()},
        "oldest_waiting": {
            name: _oldest_waiting(session, stage, now, project_id) for name, stage in queue.STAGES.items()
        },
        "workers": _workers(session, now, project_id),
        "tokens": _tokens(session, settings, project_id),
        "failures": _failures(session, project_id, failures),
    }


def _throughput(session: Session, since: datetime, project_id: int | None) -> dict[str, Any]:
    transcripts = select(
        func.count(Transcript.id),
        func.coalesce(func.sum(Transcript.audio_seconds), 0.0),
        func.coalesce(func.sum(Transcript.processing_seconds), 0.0),
    ).where(Transcript.created_at >= since)
    captions = (
        select(Caption.kind, func.count(Caption.id))
        .where(Caption.created_at >= since, Caption.kind != CaptionKind.edited)
        .group_by(Caption.kind)
    )
    if project_id is not None:
        transcripts = transcripts.join(Recording, Recording.id == Transcript.recording_id).where(
            Recording.project_id == project_id
        )
        captions = captions.join(Image, Image.id == Caption.image_id).where(Image.project_id == project_id)
    count, audio_seconds, engine_seconds = session.execute(transcripts).one()
    kinds = {CaptionKind(kind): int(n) for kind, n in session.execute(captions)}
    return {
        "transcribed": int(count),
        "audio_hours": round(float(audio_seconds) / 3600, 4),
        "engine_real_time_factor": round(float(engine_seconds) / float(audio_seconds), 4)
        if audio_seconds
        else None,
        "captioned": kinds.get(CaptionKind.single, 0),  # recordings cleaned into a caption
        "merged": kinds.get(CaptionKind.merged, 0),  # one caption per image from all its transcripts
    }


def _oldest_waiting(
    session: Session, stage: queue.Stage, now: datetime, project_id: int | None
) -> dict[str, Any] | None:
    """The row that has waited longest in the stage's ready state (since its last state change)."""
    query = (
        select(Recording.id, Recording.updated_at)
        .where(Recording.status == stage.ready)
        .order_by(Recording.updated_at, Recording.id)
        .limit(1)
    )
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    row = session.execute(query).first()
    if row is None:
        return None
    return {"recording_id": row.id, "age_seconds": round((now - row.updated_at).total_seconds(), 1)}


def _workers(session: Session, now: datetime, project_id: int | None) -> list[dict[str, Any]]:
    """Workers holding live leases right now, with how many rows each holds."""
    query = (
        select(Recording.claimed_by, Recording.status, func.count())
        .where(Recording.claimed_by.is_not(None), Recording.lease_until >= now)
        .group_by(Recording.claimed_by, Recording.status)
        .order_by(Recording.claimed_by)
    )
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    return [
        {"worker": worker, "status": RecordingStatus(status).value, "held": int(count)}
        for worker, status, count in session.execute(query)
    ]


def _tokens(session: Session, settings: Settings, project_id: int | None) -> dict[str, Any]:
    """Tokens recorded on stored captions of every cleaner (the rules cleaner records none)."""
    totals = token_totals(session, project_id, cleaner=None)
    cost = estimate_cost(totals.prompt_tokens, totals.completion_tokens, settings)
    return {
        "prompt": totals.prompt_tokens,
        "completion": totals.completion_tokens,
        "cost_estimate": None if cost is None else round(cost, 4),
    }


def _failures(session: Session, project_id: int | None, limit: int) -> list[dict[str, Any]]:
    query = (
        select(Recording.id, Recording.attempts, Recording.last_error, Recording.updated_at)
        .where(Recording.status == RecordingStatus.failed)
        .order_by(Recording.updated_at.desc(), Recording.id.desc())
        .limit(limit)
    )
    if project_id is not None:
        query = query.where(Recording.project_id == project_id)
    return [
        {"recording_id": rid, "attempts": attempts, "error": error, "at": at.isoformat()}
        for rid, attempts, error, at in session.execute(query)
    ]
