"""Ending other people's sessions: `POST /api/admin/users/{name}/logout` (log them out everywhere).

Leads may log out annotators; admins anyone (the same rule as disabling an account).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from annotate.api.deps import LeadUser, SessionDep
from annotate.services import users as user_service
from annotate.services.permissions import check_may_manage

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.post("/users/{name}/logout")
def log_user_out_everywhere(name: str, session: SessionDep, actor: LeadUser) -> dict[str, Any]:
    target = user_service.get_user(session, name)
    check_may_manage(actor, target.role)
    ended = user_service.log_out_everywhere(session, name)
    session.commit()
    return {"name": target.name, "sessions_ended": ended}
