"""A take's pointing for its annotator and reviewers, and reviewers' corrections of its points.

Points are versioned like captions: version 1 is the annotator's, stored with the take; each
correction stores the next version with its reviewer and note, and every version stays. A correction
names the version it started from, so two reviewers editing at once cannot overwrite each other: the
second is refused (`point_set_stale`) and sees the first's version.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annotate.errors import Conflict, NotFound
from annotate.services import pointing as rules
from annotate.services.export.pointing import point_set_export
from annotate.services.permissions import check_reviewer, may_see_recording
from db.models import (
    Image,
    PointingAlignment,
    PointSet,
    Project,
    ProjectMode,
    Recording,
    Trace,
    Transcript,
    User,
)
from db.settings import Settings

# The worker's alignment (transcribe/stages/pointing.py), re-run after a correction when present.
ALIGN_MODULE = "transcribe.stages.pointing"


@dataclass(frozen=True)
class Correction:
    base_version: int
    points: Any
    absent_labels: Any
    note: str = ""


def visible_recording(session: Session, user: User, recording_id: int) -> Recording:
    """The take, if `user` may see it (its annotator or a reviewer); else NotFound, as if absent."""
    recording = session.get(Recording, recording_id)
    if recording is None or not may_see_recording(user, recording):
        raise NotFound("No such recording.", code="recording_not_found")
    return recording


def pointing_view(session: Session, user: User, recording_id: int) -> dict[str, Any]:
    """Everything the review page draws: image size, labels, trace, every point set version, and
    the newest transcript's words and alignment."""
    recording = visible_recording(session, user, recording_id)
    image = session.get_one(Image, recording.image_id)
    project = session.get_one(Project, recording.project_id)
    trace = session.scalar(select(Trace).where(Trace.recording_id == recording.id))
    versions = _versions(session, recording.id)
    authors = _names(session, {v.created_by for v in versions if v.created_by is not None})
    transcript = session.scalar(
        select(Transcript)
        .where(Transcript.recording_id == recording.id)
        .order_by(Transcript.revision.desc(), Transcript.id.desc())
        .limit(1)
    )
    alignment = None
    if transcript is not None:
        alignment = session.scalar(
            select(PointingAlignment).where(PointingAlignment.transcript_id == transcript.id)
        )
    return {
        "recording_id": recording.id,
        "image": {"id": image.id, "width": image.width, "height": image.height},
        "mode": project.mode.value,
        "labels": rules.effective_labels(image.labels, project.labels),
        "duration_seconds": recording.duration_seconds,
        "trace": {
            "segments": trace.segments if trace is not None else [],
            "sample_count": trace.sample_count if trace is not None else 0,
        },
        "point_sets": [
            {
                "version": v.version,
                "points": v.points,
                "absent_labels": v.absent_labels,
                "created_by": authors.get(v.created_by) if v.created_by is not None else None,
                "note": v.note,
                "created_at": v.created_at,
            }
            for v in versions
        ],
        "current_version": versions[-1].version if versions else None,
        "alignment": (
            {
                "transcript_id": alignment.transcript_id,
                "point_set_id": alignment.point_set_id,
                "words": alignment.words,
                "links": alignment.links,
                "counts": alignment.counts,
                "count_mismatch": alignment.count_mismatch,
            }
            if alignment is not None
            else None
        ),
        "words": _words(transcript),
    }


def correct_points(
    session: Session, settings: Settings, reviewer: User, recording_id: int, correction: Correction
) -> PointSet:
    """Store a reviewer's points as the next version; flushes (the caller commits).

    Refused: a non-reviewer (403 wrong_role), a take without pointing (409 pointing_not_expected), a
    base version that is not the newest (409 point_set_stale), and points that fail the intake checks
    (t may be null: a point added in review has no time)."""
    check_reviewer(reviewer)
    recording = visible_recording(session, reviewer, recording_id)
    project = session.get_one(Project, recording.project_id)
    image = session.get_one(Image, recording.image_id)
    versions = _versions(session, recording.id)
    if project.mode is ProjectMode.describe or not versions:
        raise Conflict("This take has no points to correct.", code="pointing_not_expected")
    current = versions[-1].version
    if correction.base_version != current:
        raise _stale(correction.base_version, current)
    limits = rules.limits_from(settings)
    points, absent = rules.parse_points(correction.points, correction.absent_labels, limits)
    labels = rules.effective_labels(image.labels, project.labels)
    rules.check_labels(project.mode, labels, points, absent)
    rules.check_times((), points, recording.duration_seconds, limits.time_tolerance_seconds)
    stored, absent_labels = [p.to_json() for p in points], list(absent)
    export_groups, points_text = point_set_export(stored, absent_labels, recording.id)
    point_set = PointSet(
        recording_id=recording.id,
        version=current + 1,
        points=stored,
        absent_labels=absent_labels,
        created_by=reviewer.id,
        note=correction.note.strip(),
        export_groups=export_groups,
        points_text=points_text,
    )
    try:
        with session.begin_nested():
            session.add(point_set)
            session.flush()
    except IntegrityError:
        # Another reviewer stored this version a moment ago.
        raise _stale(correction.base_version, current + 1) from None
    realign(session, settings, recording.id)
    return point_set


def realign(session: Session, settings: Settings, recording_id: int) -> None:
    """Re-run the worker's alignment on the newest points, where that stage is installed."""
    if importlib.util.find_spec(ALIGN_MODULE) is None:
        return
    stage = importlib.import_module(ALIGN_MODULE)
    align = getattr(stage, "align_recording", None)
    if align is not None:
        align(session, recording_id, settings)


def _stale(base: int, current: int) -> Conflict:
    return Conflict(
        f"The points changed while you edited them (you started from version {base}; the newest is "
        f"version {current}). Reload to see the newest version, then correct it.",
        code="point_set_stale",
    )


def _versions(session: Session, recording_id: int) -> list[PointSet]:
    return list(
        session.scalars(
            select(PointSet).where(PointSet.recording_id == recording_id).order_by(PointSet.version)
        )
    )


def _names(session: Session, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(user_ids)))
    return {user_id: name for user_id, name in rows}


def _words(transcript: Transcript | None) -> list[dict[str, Any]]:
    if transcript is None:
        return []
    keys = ("start", "end", "word", "probability")
    return [{k: word.get(k) for k in keys} for word in transcript.words or [] if isinstance(word, dict)]
