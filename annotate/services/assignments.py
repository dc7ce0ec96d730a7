"""Assignments: which image an annotator describes next, held on a lease that expires.

An image needs `project.per_image` accepted recordings. A slot is taken by an accepted recording
(`Image.done_count`) or by a live lease (status leased, lease_until in the future). An abandoned tab simply
stops renewing its lease, and once it lapses the slot counts as free again.

Two annotators asking at once must not take the same last slot. On PostgreSQL the candidate image row is
locked with `FOR UPDATE SKIP LOCKED` (a second asker skips to the next image instead of waiting) and the
slot count is re-read after the lock is held; on SQLite every transaction is `BEGIN IMMEDIATE` (see
db.session), so askers are serialised anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annotate.errors import Conflict, InvalidInput, NotFound
from db.models import Assignment, AssignmentStatus, Image, Project, Recording, User, utcnow
from db.session import is_sqlite
from db.settings import Settings

# Stable codes the browser shows as a list; "other" takes a free-text note.
SKIP_REASONS: dict[str, str] = {
    "image_broken": "The image is broken or does not load",
    "inappropriate": "The image is inappropriate",
    "cannot_describe": "I cannot describe this image",
    "other": "Something else",
}
MAX_NOTE = 500
# A stale candidate (filled by someone else between our read and our lock) costs one more query.
MAX_CANDIDATE_TRIES = 20


@dataclass
class TodayCounts:
    recordings: int
    skipped: int
    seconds: float


def _live(now: datetime) -> ColumnElement[bool]:
    return (Assignment.status == AssignmentStatus.leased) & (Assignment.lease_until > now)


def _live_leases_of(image_id: Any, now: datetime) -> Any:
    query = select(func.count()).select_from(Assignment).where(Assignment.image_id == image_id, _live(now))
    return query.scalar_subquery()


def current_assignment(
    session: Session, user: User, project_id: int | None = None, now: datetime | None = None
) -> Assignment | None:
    """The user's live lease (a reloaded tab gets the same image back). Lapsed leases of theirs met on
    the way are marked expired (they already count as free; this keeps the status honest)."""
    now = now or utcnow()
    query = select(Assignment).where(
        Assignment.user_id == user.id, Assignment.status == AssignmentStatus.leased
    )
    if project_id is not None:
        query = query.where(Assignment.project_id == project_id)
    live = None
    for assignment in session.scalars(query.order_by(Assignment.id.desc())):
        if assignment.lease_until > now:
            live = live or assignment
        else:
            assignment.status = AssignmentStatus.expired
    return live


def open_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def next_assignment(
    session: Session,
    settings: Settings,
    *,
    user: User,
    project: Project | None = None,
    now: datetime | None = None,
) -> Assignment | None:
    """The user's live lease renewed, else a new lease on an image they have not described; None when
    every image of the project (or of every project, when none is given) is done or taken.

    Flushes; the caller commits.
    """
    now = now or utcnow()
    lease = timedelta(minutes=settings.assignment_lease_minutes)
    existing = current_assignment(session, user, project.id if project else None, now)
    if existing is not None:
        existing.lease_until = now + lease
        session.flush()
        return existing
    for candidate_project in [project] if project is not None else open_projects(session):
        assignment = _lease_in_project(session, candidate_project, user, now, now + lease)
        if assignment is not None:
            return assignment
    return None


def _lease_in_project(
    session: Session, project: Project, user: User, now: datetime, lease_until: datetime
) -> Assignment | None:
    postgres = not is_sqlite(session.get_bind())
    # Images this user already described, skipped or holds; an expired lease of theirs may come back.
    mine = exists().where(
        Assignment.image_id == Image.id,
        Assignment.user_id == user.id,
        Assignment.status != AssignmentStatus.expired,
    )
    query = (
        select(Image.id)
        .where(
            Image.project_id == project.id,
            Image.done_count < project.per_image,  # lets ix_images_next bound the scan
            ~mine,
            Image.done_count + _live_leases_of(Image.id, now) < project.per_image,
        )
        .order_by(Image.done_count, Image.id)
        .limit(1)
    )
    for _ in range(MAX_CANDIDATE_TRIES):
        if postgres:
            # Skip images another asker holds locked; if every candidate is locked, wait for one
            # rather than answer "nothing left" while slots may still be free.
            image_id = session.scalar(query.with_for_update(skip_locked=True, of=Image))
            if image_id is None:
                image_id = session.scalar(query.with_for_update(of=Image))
        else:
            image_id = session.scalar(query)
        if image_id is None:
            return None
        if postgres:
            # Re-read under the lock: the candidate query's snapshot may predate a lease just committed.
            taken = session.scalar(
                select(Image.done_count + _live_leases_of(image_id, now)).where(Image.id == image_id)
            )
            if (taken or 0) >= project.per_image:
                continue
        return _take(session, project, image_id, user, lease_until)
    return None


def _take(session: Session, project: Project, image_id: int, user: User, lease_until: datetime) -> Assignment:
    assignment = session.scalar(
        select(Assignment).where(Assignment.image_id == image_id, Assignment.user_id == user.id)
    )
    if assignment is None:
        assignment = Assignment(image_id=image_id, user_id=user.id, project_id=project.id)
        session.add(assignment)
    assignment.status = AssignmentStatus.leased
    assignment.lease_until = lease_until
    assignment.skip_reason = None
    try:
        session.flush()
    except IntegrityError:
        # The same user asked twice at once (two tabs): the other request holds this image. The
        # caller's transaction is spoilt either way, so no savepoint is spent on the common path.
        raise Conflict("Another tab of yours took this image just now; reload the page.") from None
    return assignment


def get_own_assignment(session: Session, user: User, assignment_id: int) -> Assignment:
    """An assignment of this user; someone else's reads as absent (annotators see only their work)."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.user_id != user.id:
        raise NotFound(f"You have no assignment {assignment_id}.", code="assignment_not_found")
    return assignment


def renew_lease(
    session: Session, settings: Settings, *, user: User, assignment_id: int, now: datetime | None = None
) -> Assignment:
    """Keep an open tab's lease alive. A lapsed lease is renewed too if nobody took the slot meanwhile."""
    now = now or utcnow()
    assignment = get_own_assignment(session, user, assignment_id)
    if assignment.status not in (AssignmentStatus.leased, AssignmentStatus.expired):
        raise Conflict(f"This image is already {assignment.status.value}.", code="assignment_closed")
    assignment.status = AssignmentStatus.leased
    assignment.lease_until = now + timedelta(minutes=settings.assignment_lease_minutes)
    session.flush()
    return assignment


def skip_assignment(
    session: Session, *, user: User, assignment_id: int, reason: str, note: str = ""
) -> Assignment:
    """Give the image back with a reason; this user will not be offered it again."""
    if reason not in SKIP_REASONS:
        raise InvalidInput(f"Unknown skip reason {reason!r}; use one of: {', '.join(SKIP_REASONS)}.")
    note = note.strip()[:MAX_NOTE]
    if reason == "other" and not note:
        raise InvalidInput("Please say briefly why you are skipping this image.", code="skip_note_required")
    assignment = get_own_assignment(session, user, assignment_id)
    if assignment.status == AssignmentStatus.submitted:
        raise Conflict("You already submitted a description of this image.", code="assignment_closed")
    assignment.status = AssignmentStatus.skipped
    assignment.skip_reason = f"{reason}: {note}" if note else reason
    session.flush()
    return assignment


def today_counts(session: Session, user: User, since: datetime) -> TodayCounts:
    mine_today = (Recording.user_id == user.id) & (Recording.created_at >= since)
    recordings, seconds, skipped = session.execute(
        select(  # one round trip: this runs on every "next image"
            select(func.count()).select_from(Recording).where(mine_today).scalar_subquery(),
            select(func.coalesce(func.sum(Recording.duration_seconds), 0.0))
            .where(mine_today)
            .scalar_subquery(),
            select(func.count())
            .select_from(Assignment)
            .where(
                Assignment.user_id == user.id,
                Assignment.status == AssignmentStatus.skipped,
                Assignment.updated_at >= since,
            )
            .scalar_subquery(),
        )
    ).one()
    return TodayCounts(int(recordings or 0), int(skipped or 0), float(seconds or 0.0))


def can_view_image(session: Session, user: User, image_id: int, now: datetime | None = None) -> bool:
    """Annotators see images they hold a live lease on or have described; leads and admins see all."""
    if user.role.value in ("lead", "admin"):
        return True
    now = now or utcnow()
    return bool(
        session.scalar(
            select(
                exists().where(
                    Assignment.image_id == image_id,
                    Assignment.user_id == user.id,
                    _live(now) | (Assignment.status == AssignmentStatus.submitted),
                )
            )
        )
    )


def task_images(session: Session, assignment: Assignment) -> tuple[Image, Project]:
    image = session.get(Image, assignment.image_id)
    project = session.get(Project, assignment.project_id)
    if image is None or project is None:
        raise NotFound("The image of this assignment no longer exists.")
    return image, project
