"""Who may do what: the role rules that the HTTP API and the CLI both apply, written once.

Leads and admins review, see the figures, export and run projects; every role may record. Leads
manage annotator accounts; only an admin manages leads and admins.
"""

from __future__ import annotations

from annotate.errors import Forbidden
from db.models import Recording, Role, User

REVIEWER_ROLES = (Role.lead, Role.admin)
RECORDER_ROLES = (Role.annotator, Role.lead, Role.admin)


def check_role(user: User, roles: tuple[Role, ...]) -> User:
    """`user`, if their role is one of `roles`; else Forbidden (code wrong_role) naming both."""
    if user.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise Forbidden(
            f"This needs the {allowed} role; {user.name}'s role is {user.role.value}.", code="wrong_role"
        )
    return user


def may_review(user: User) -> bool:
    return user.role in REVIEWER_ROLES


def may_see_recording(user: User, recording: Recording) -> bool:
    """A take (its audio, its pointing) is seen by its annotator and by reviewers."""
    return may_review(user) or recording.user_id == user.id


def check_reviewer(user: User) -> User:
    """The one rule for reviews (and the lead's other work: figures, exports, projects)."""
    if not may_review(user):
        raise Forbidden(
            "Only a lead or admin may do this (leads and admins review, export and run projects); "
            f"{user.name} is {_article(user.role)} {user.role.value}.",
            code="wrong_role",
        )
    return user


def _article(role: Role) -> str:
    return "an" if role.value[0] in "aeiou" else "a"


def check_may_manage(actor: User, role: Role) -> None:
    """May `actor` add, disable, enable or reset the password of an account with `role`?"""
    if actor.role is not Role.admin and role is not Role.annotator:
        raise Forbidden("Leads manage annotators; only an admin manages leads and admins.", code="wrong_role")
