"""The annotator page's languages: one message catalog per language, `web/i18n/<code>.json`.

A project names its annotators' interface language; only a language with a shipped catalog can be
named, so a typo cannot leave annotators with a page that silently falls back to English. Adding a
language is adding its catalog (see docs/architecture.md); nothing here lists languages by hand except
which scripts run right to left, which the page needs before it draws anything.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

import web
from annotate.errors import InvalidInput
from db.models import Assignment, Project, User

CATALOG_DIR = Path(web.__file__).resolve().parent / "i18n"
DEFAULT = "en"
# Written right to left: Arabic, Hebrew, Persian, Urdu (the task API tells the page its direction).
RIGHT_TO_LEFT = frozenset({"ar", "he", "fa", "ur"})
_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})?")


def shipped() -> list[str]:
    """Codes of the catalogs shipped with the web app, sorted."""
    return sorted(path.stem for path in CATALOG_DIR.glob("*.json") if _CODE.fullmatch(path.stem))


def check_interface_language(code: str) -> str:
    """The code, normalised ("AR" -> "ar"), if a catalog ships for it; else an error naming those that do."""
    normalised = code.strip().lower().replace("_", "-")
    available = shipped()
    if normalised not in available:
        raise InvalidInput(
            f"No interface catalog for {code!r}; available: {', '.join(available)} "
            "(a language is added as web/i18n/<code>.json).",
            code="unknown_interface_language",
        )
    return normalised


def direction(code: str) -> Literal["ltr", "rtl"]:
    """The writing direction of an interface language."""
    return "rtl" if code.split("-")[0] in RIGHT_TO_LEFT else "ltr"


def for_annotator(session: Session, user: User, project: Project | None) -> str:
    """The interface language of a page that has no task to show: the project asked for, else the
    project the annotator last worked in, else English."""
    if project is not None:
        return project.interface_language or DEFAULT
    last = session.scalar(
        select(Project.interface_language)
        .join(Assignment, Assignment.project_id == Project.id)
        .where(Assignment.user_id == user.id)
        .order_by(Assignment.id.desc())
        .limit(1)
    )
    return last or DEFAULT
