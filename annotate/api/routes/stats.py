"""The dashboard's data: grouped figures, live counts to poll, and QC (leads and admins)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from annotate.api.deps import LeadUser, SessionDep, SettingsDep
from annotate.api.fast_json import json_response
from annotate.services import qc, stats

router = APIRouter(prefix="/api", tags=["stats"])


@router.get("/stats")
def grouped(
    session: SessionDep,
    _: LeadUser,
    project: int | None = Query(None, description="Project id; all projects when left out."),
    by: Literal["project", "annotator", "day"] = Query("annotator"),
) -> Response:
    """Images done, audio hours, median seconds per take, words per caption, approval and rejection
    rates and takes per day, grouped by project, annotator or day, with totals."""
    return json_response(stats.stats(session, project, by))


@router.get("/stats/live")
def live(
    session: SessionDep,
    _: LeadUser,
    project: int | None = Query(None),
) -> Response:
    """Cheap counts for polling: recordings by state, the review queue, decisions in the last 24 h."""
    return json_response(stats.live_counts(session, project))


@router.get("/qc")
def quality(
    session: SessionDep,
    settings: SettingsDep,
    _: LeadUser,
    project: int | None = Query(None),
    annotator: int | None = Query(None, description="Annotator (user) id."),
    flag: str | None = Query(None, max_length=100, description="A QC flag name, or `any`."),
    limit: int = Query(500, ge=1, le=5000),
) -> Response:
    """Each take's QC figures and flags (rule breaches, project outliers) and each annotator's outliers."""
    f = qc.QcFilter(project_id=project, annotator_id=annotator, flag=flag or None, limit=limit)
    return json_response(qc.qc_report(session, settings, f))
