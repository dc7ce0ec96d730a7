"""The annotator's work: the next image (a lease), renewing it, skipping it, and today's tally.

Every role may record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from annotate.api.deps import CurrentUser, SessionDep, SettingsDep
from annotate.services import assignments, interface_languages
from annotate.services.intake import max_upload_bytes
from annotate.services.pointing import effective_labels
from annotate.services.projects import get_project
from db.models import Assignment, Image, Project, ProjectMode, User
from db.settings import Settings

router = APIRouter(prefix="/api/tasks", tags=["tasks"])
# The page shows its catalog's "done.message" instead, in the interface language.
NO_IMAGES_LEFT = "There are no images left for you to describe. Thank you!"


class ProjectBrief(BaseModel):
    id: int
    name: str
    instructions: str
    questions: list[str]
    min_seconds: float
    max_seconds: float


class ImageBrief(BaseModel):
    id: int
    width: int
    height: int
    url: str = Field(description="The original, for the zoomable view.")
    thumbnail_url: str


class Task(BaseModel):
    assignment_id: int
    lease_until: datetime
    image: ImageBrief
    project: ProjectBrief
    mode: ProjectMode = Field(
        description="describe: speak; narrate: speak while the pointer is traced and clicks drop points; "
        "point: point at every instance of each label (or mark it absent)."
    )
    labels: list[str] = Field(
        description="What to point at in this image: its own labels from the ingest manifest, else the "
        "project's. Point mode needs every one answered."
    )


class Today(BaseModel):
    recordings: int
    skipped: int
    seconds: float


class Limits(BaseModel):
    max_upload_bytes: int
    duration_tolerance_seconds: float
    pointing_max_points: int
    pointing_max_trace_samples: int
    pointing_max_bytes: int
    pointing_time_tolerance_seconds: float


class SkipReason(BaseModel):
    code: str
    label: str


class NextTask(BaseModel):
    task: Task | None = Field(description="None when no image is left for you.")
    message: str = ""
    interface_language: str = Field(
        "en", description="The page's language (the task's project's; /static/i18n/<code>.json)."
    )
    direction: Literal["ltr", "rtl"] = Field("ltr", description="The interface language's writing direction.")
    today: Today
    limits: Limits
    skip_reasons: list[SkipReason]


class NextRequest(BaseModel):
    project_id: int | None = Field(None, description="Stay in one project; default: any with work left.")
    since: datetime | None = Field(None, description="Start of the annotator's day, for `today`.")


class SkipRequest(BaseModel):
    reason: str = Field(description="One of skip_reasons' codes.")
    note: str = Field("", max_length=assignments.MAX_NOTE)
    since: datetime | None = None


class Lease(BaseModel):
    assignment_id: int
    lease_until: datetime


class ProjectChoice(BaseModel):
    id: int
    name: str


def _since(value: datetime | None) -> datetime:
    if value is None:
        now = datetime.now(UTC)
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Clamp: "today" never reaches further back than two days.
    return max(value, datetime.now(UTC) - timedelta(days=2))


def _today(session: Session, user: User, since: datetime | None) -> Today:
    counts = assignments.today_counts(session, user, _since(since))
    return Today(recordings=counts.recordings, skipped=counts.skipped, seconds=round(counts.seconds, 1))


def task_out(assignment: Assignment, image: Image, project: Project) -> Task:
    return Task(
        assignment_id=assignment.id,
        lease_until=assignment.lease_until,
        image=ImageBrief(
            id=image.id,
            width=image.width,
            height=image.height,
            url=f"/api/images/{image.id}/original",
            thumbnail_url=f"/api/images/{image.id}/thumbnail",
        ),
        project=ProjectBrief(
            id=project.id,
            name=project.name,
            instructions=project.instructions,
            questions=[str(q) for q in project.questions],
            min_seconds=project.min_seconds,
            max_seconds=project.max_seconds,
        ),
        mode=project.mode,
        labels=effective_labels(image.labels, project.labels),
    )


def _next_task(session: Session, settings: Settings, user: User, body: NextRequest) -> NextTask:
    project = get_project(session, body.project_id) if body.project_id is not None else None
    assignment = assignments.next_assignment(session, settings, user=user, project=project)
    task = None
    message = ""
    if assignment is None:
        message = NO_IMAGES_LEFT
        language = interface_languages.for_annotator(session, user, project)
    else:
        image, task_project = assignments.task_images(session, assignment)
        task = task_out(assignment, image, task_project)
        language = task_project.interface_language or interface_languages.DEFAULT
    today = _today(session, user, body.since)
    session.commit()
    return NextTask(
        task=task,
        message=message,
        interface_language=language,
        direction=interface_languages.direction(language),
        today=today,
        limits=Limits(
            max_upload_bytes=max_upload_bytes(settings),
            duration_tolerance_seconds=settings.duration_tolerance_seconds,
            pointing_max_points=settings.pointing_max_points,
            pointing_max_trace_samples=settings.pointing_max_trace_samples,
            pointing_max_bytes=settings.pointing_max_kb * 1024,
            pointing_time_tolerance_seconds=settings.pointing_time_tolerance_seconds,
        ),
        skip_reasons=[SkipReason(code=c, label=label) for c, label in assignments.SKIP_REASONS.items()],
    )


@router.post("/next", response_model=NextTask)
def next_task(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, body: NextRequest | None = None
) -> NextTask:
    """Your current image, or a new one you have not described, held for you on a lease
    (`assignment_lease_minutes`). Asking again returns the same image and renews the lease."""
    return _next_task(session, settings, user, body or NextRequest())


@router.post("/{assignment_id}/renew", response_model=Lease)
def renew(assignment_id: int, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Lease:
    """Keep the lease of an open task page alive."""
    assignment = assignments.renew_lease(session, settings, user=user, assignment_id=assignment_id)
    session.commit()
    return Lease(assignment_id=assignment.id, lease_until=assignment.lease_until)


@router.post("/{assignment_id}/skip", response_model=Today)
def skip(
    assignment_id: int,
    body: SkipRequest,
    session: SessionDep,
    user: CurrentUser,
) -> Today:
    """Give an image back with a reason; you will not be offered it again."""
    assignments.skip_assignment(
        session, user=user, assignment_id=assignment_id, reason=body.reason, note=body.note
    )
    today = _today(session, user, body.since)
    session.commit()
    return today


@router.get("/today", response_model=Today)
def today(
    session: SessionDep,
    user: CurrentUser,
    since: datetime | None = Query(None, description="Start of your day (ISO 8601); default UTC midnight."),
) -> Today:
    """What you recorded and skipped today."""
    return _today(session, user, since)


@router.get("/projects", response_model=list[ProjectChoice])
def projects(session: SessionDep, _: CurrentUser) -> list[ProjectChoice]:
    """Projects you can work on."""
    return [ProjectChoice(id=p.id, name=p.name) for p in assignments.open_projects(session)]
