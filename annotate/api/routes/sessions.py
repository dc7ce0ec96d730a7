"""Ending other people's sessions: `POST /api/admin/users/{name}/logout` (log them out everywhere).

Leads may log out annotators; admins anyone (the same rule as disabling an account).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from annotate.api.deps import get_session, require_lead
from annotate.errors import Forbidden
from annotate.services import users as user_service
from db.models import Role, User

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.post("/users/{name}/logout")
def log_user_out_everywhere(
    name: str, session: Session = Depends(get_session), actor: User = Depends(require_lead)
) -> dict[str, Any]:
    target = user_service.get_user(session, name)
    if actor.role is not Role.admin and target.role is not Role.annotator:
        raise Forbidden("Leads manage annotators; only an admin manages leads and admins.", code="wrong_role")
    ended = user_service.log_out_everywhere(session, name)
    session.commit()
    return {"name": target.name, "sessions_ended": ended}
