"""Admin pages' API (leads and admins): projects, adding images, and annotator accounts.

Images arrive one request per file (a picture or a zip of pictures) as the raw request body, streamed to
a temporary directory under a size cap and handed to the same ingest service as `voicecap ingest`, whose
per-file reasons come back in the answer. Leads manage annotators; only admins manage leads and admins.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from annotate.api.deps import BlobsDep, LeadUser, SessionDep, SessionFactoryDep, SettingsDep
from annotate.errors import InvalidInput, VoicecapError
from annotate.services import ingest
from annotate.services import projects as project_service
from annotate.services import users as user_service
from annotate.services.interface_languages import shipped as shipped_interface_languages
from annotate.services.permissions import check_may_manage
from db.models import ProjectMode, Role, User

router = APIRouter(prefix="/api/admin", tags=["admin"])

# One zip upload (a single image is capped by settings.max_image_mb). Bigger collections belong to
# `voicecap ingest` on the server.
MAX_UPLOAD_BYTES = 1_000_000_000


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    instructions: str | None = Field(None, max_length=20000)
    questions: list[str] | None = None
    min_seconds: float = 30.0
    max_seconds: float = 120.0
    per_image: int = 1
    language: str = Field("en", max_length=16)
    interface_language: str = Field(
        "en", max_length=16, description="The annotator page's language: one of web/i18n/<code>.json."
    )
    caption_language: str | None = Field(
        None, max_length=16, description="Write captions in this language; empty: the language spoken."
    )
    mode: ProjectMode = ProjectMode.describe
    labels: list[str] | None = Field(None, description="point mode: what to point at.")


class ProjectUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    instructions: str | None = Field(None, max_length=20000)
    questions: list[str] | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    per_image: int | None = None
    language: str | None = Field(None, max_length=16)
    interface_language: str | None = Field(None, max_length=16)
    caption_language: str | None = Field(
        None, max_length=16, description='"" clears it: captions in the language spoken again.'
    )
    mode: ProjectMode | None = None
    labels: list[str] | None = None


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.annotator
    password: str | None = Field(
        None, max_length=1000, description="Left out: one is generated and shown once."
    )


class PasswordReset(BaseModel):
    password: str | None = Field(None, max_length=1000)


# --- projects ---------------------------------------------------------------------------------------


@router.get("/projects")
def projects(session: SessionDep, _: LeadUser) -> dict[str, Any]:
    return {
        "projects": [project_service.project_dict(p, n) for p, n in project_service.list_projects(session)]
    }


@router.post("/projects", status_code=201)
def create_project(body: ProjectCreate, session: SessionDep, _: LeadUser) -> dict[str, Any]:
    spec = project_service.ProjectSpec(
        name=body.name,
        questions=[q.strip() for q in body.questions if q.strip()] if body.questions else None,
        min_seconds=body.min_seconds,
        max_seconds=body.max_seconds,
        per_image=body.per_image,
        language=body.language,
        interface_language=body.interface_language,
        caption_language=body.caption_language,
        mode=body.mode,
        labels=body.labels,
    )
    if body.instructions and body.instructions.strip():
        spec.instructions = body.instructions.strip()
    project = project_service.create_project(session, spec)
    session.commit()
    return project_service.project_dict(project, 0)


@router.get("/languages")
def languages(_: LeadUser) -> dict[str, list[str]]:
    """What the project form offers: interface languages (a catalog ships) and caption languages."""
    return {"interface": shipped_interface_languages(), "caption": project_service.caption_languages()}


@router.get("/projects/{project_id}")
def project(project_id: int, session: SessionDep, _: LeadUser) -> dict[str, Any]:
    return project_service.project_dict(project_service.get_project(session, project_id))


@router.patch("/projects/{project_id}")
def update_project(
    project_id: int,
    body: ProjectUpdate,
    session: SessionDep,
    _: LeadUser,
) -> dict[str, Any]:
    project = project_service.get_project(session, project_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "questions" in changes:
        changes["questions"] = [q.strip() for q in changes["questions"] if q.strip()]
        if not changes["questions"]:
            raise InvalidInput("A project needs at least one guiding question.")
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    project_service.update_project(session, project, **changes)
    session.commit()
    return project_service.project_dict(project)


@router.post("/projects/{project_id}/images")
async def add_images(
    project_id: int,
    request: Request,
    session: SessionDep,
    sessions: SessionFactoryDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    _: LeadUser,
    filename: str = Query(
        ..., min_length=1, max_length=255, description="The file's name: an image or a .zip."
    ),
) -> dict[str, Any]:
    """Add images: the request body is one image file or a zip of them. Answers {added, duplicate, rejected:
    [{path, reason}]}, as `voicecap ingest --json` does."""
    project_id = await run_in_threadpool(_project_id, session, project_id)
    name = _safe_name(filename)
    is_zip = name.lower().endswith(".zip")
    limit = MAX_UPLOAD_BYTES if is_zip else int(settings.max_image_mb * 1_000_000)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    workdir = Path(tempfile.mkdtemp(prefix="voicecap-upload-"))
    try:
        target = workdir / name
        await _save_body(request, target, limit)
        items = await run_in_threadpool(ingest.upload_items, target, name)
        # A zip's members go through the ingest's thread pool; a single image needs none.
        workers = None if is_zip else 1
        summary = await run_in_threadpool(
            ingest.ingest, sessions, blobs, settings, project_id, items, total=len(items), workers=workers
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, Any] = summary.to_json()
    result["file"] = name
    return result


async def _save_body(request: Request, target: Path, limit: int) -> None:
    size = 0
    with target.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            out.write(chunk)
    if size == 0:
        raise InvalidInput("The upload is empty.")


def _project_id(session: Session, name_or_id: int) -> int:
    project_id = project_service.get_project(session, name_or_id).id
    # End this transaction: on SQLite it holds the write lock, which the ingest's own sessions need.
    session.rollback()
    return project_id


def _too_large(limit: int) -> VoicecapError:
    return VoicecapError(
        f"The upload is larger than {limit // 1_000_000} MB; split it, or run `voicecap ingest` there.",
        code="too_large",
        status=413,
    )


def _safe_name(filename: str) -> str:
    """The last path component, with anything outside a conservative set replaced."""
    base = PurePosixPath(filename.replace("\\", "/")).name
    base = re.sub(r"[^\w.\- ]", "_", base).strip(" .")
    if not base:
        raise InvalidInput(f"Not a usable file name: {filename!r}.")
    return base[:200]


# --- users --------------------------------------------------------------------------------------------


def _user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role.value,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }


@router.get("/users")
def users(session: SessionDep, _: LeadUser) -> dict[str, Any]:
    return {"users": [_user_dict(u) for u in user_service.list_users(session)]}


@router.post("/users", status_code=201)
def add_user(body: UserCreate, session: SessionDep, actor: LeadUser) -> dict[str, Any]:
    """Add a user; without a password one is generated and returned once, in this answer."""
    check_may_manage(actor, body.role)
    created = user_service.add_user(session, body.name, body.role, body.password or None)
    session.commit()
    result = _user_dict(created.user)
    if created.generated:
        result["password"] = created.password
    return result


def _target(session: Session, actor: User, name: str) -> User:
    user = user_service.get_user(session, name)
    check_may_manage(actor, user.role)
    return user


@router.post("/users/{name}/disable")
def disable_user(name: str, session: SessionDep, actor: LeadUser) -> dict[str, Any]:
    user = _target(session, actor, name)
    if user.id == actor.id:
        raise InvalidInput("You cannot disable your own account.")
    user_service.set_disabled(session, name, True)
    session.commit()
    return _user_dict(user)


@router.post("/users/{name}/enable")
def enable_user(name: str, session: SessionDep, actor: LeadUser) -> dict[str, Any]:
    user = _target(session, actor, name)
    user_service.set_disabled(session, name, False)
    session.commit()
    return _user_dict(user)


@router.post("/users/{name}/reset-password")
def reset_password(
    name: str,
    session: SessionDep,
    actor: LeadUser,
    body: PasswordReset | None = None,
) -> dict[str, Any]:
    """A new password: the one given, or a generated one returned once, in this answer."""
    _target(session, actor, name)
    result = user_service.reset_password(session, name, body.password if body and body.password else None)
    session.commit()
    answer = _user_dict(result.user)
    if result.generated:
        answer["password"] = result.password
    return answer
