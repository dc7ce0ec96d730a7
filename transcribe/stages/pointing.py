"""Store what a take's words point at: its newest transcript aligned with its trace and current points.

The transcribe stage calls `align_recording` in the transaction that stores a Transcript; anything that
changes a take's points (a reviewer's correction) may call it again. The alignment of a transcript is
one row, replaced on each call; a disagreeing spoken count puts `count_mismatch` in the recording's
`meta["qc_flags"]` (where intake's flags live) and an agreeing realignment takes it out again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import (
    Image,
    PointingAlignment,
    PointSet,
    Project,
    ProjectMode,
    Recording,
    Trace,
    Transcript,
)
from db.settings import Settings
from transcribe.pointing_align import align

COUNT_MISMATCH = "count_mismatch"


def align_recording(session: Session, recording_id: int, settings: Settings) -> PointingAlignment | None:
    """(Re)compute and upsert the alignment of the recording's newest transcript; None for a describe
    take, a missing recording, or one not transcribed yet."""
    row = session.execute(
        select(Recording, Project, Image)
        .join(Project, Project.id == Recording.project_id)
        .join(Image, Image.id == Recording.image_id)
        .where(Recording.id == recording_id)
    ).first()
    if row is None:
        return None
    recording, project, image = row
    if project.mode == ProjectMode.describe:
        return None
    transcript = session.scalars(
        select(Transcript)
        .where(Transcript.recording_id == recording_id)
        .order_by(Transcript.revision.desc(), Transcript.id.desc())
        .limit(1)
    ).first()
    if transcript is None:
        return None
    point_set = session.scalars(
        select(PointSet)
        .where(PointSet.recording_id == recording_id)
        .order_by(PointSet.version.desc())
        .limit(1)
    ).first()
    segments = session.scalar(select(Trace.segments).where(Trace.recording_id == recording_id)) or []
    labels = _labels(image.labels if image.labels is not None else project.labels)
    result = align(
        transcript.words or [],
        segments,
        point_set.points if point_set else [],
        labels if project.mode == ProjectMode.point else [],
        transcript.language or project.language,
        settings.pointing_link_window_seconds,
    )
    alignment = session.scalar(
        select(PointingAlignment).where(PointingAlignment.transcript_id == transcript.id)
    )
    if alignment is None:
        alignment = PointingAlignment(transcript_id=transcript.id)
        session.add(alignment)
    alignment.point_set_id = point_set.id if point_set else None
    alignment.words = result.words
    alignment.links = result.links
    alignment.counts = result.counts
    alignment.count_mismatch = result.count_mismatch
    _set_flag(recording, COUNT_MISMATCH, result.count_mismatch)
    session.flush()
    return alignment


def _labels(labels: Any) -> list[str]:
    """Label names, whether stored as strings or as {"label": ...} objects."""
    names = []
    for label in labels or []:
        name = label.get("label") or label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return names


def _set_flag(recording: Recording, flag: str, on: bool) -> None:
    meta = dict(recording.meta or {})
    flags = [f for f in meta.get("qc_flags", []) if f != flag]
    if on:
        flags.append(flag)
    if flags != list(meta.get("qc_flags", [])):
        meta["qc_flags"] = flags
        recording.meta = meta  # a new dict, so the JSON column is seen as changed
