"""The role rules the HTTP API and the CLI share (annotate.services.permissions), and the generated
secret key file (written atomically, private from the first byte)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from annotate.errors import Forbidden
from annotate.security import secret_key
from annotate.services.permissions import check_may_manage, check_reviewer, may_review
from db.models import Role, User
from db.settings import Settings


def _user(role: Role) -> User:
    return User(name=f"a-{role.value}", role=role, password_hash="x", pseudonym="p")


def test_only_leads_and_admins_review() -> None:
    assert [may_review(_user(r)) for r in Role] == [r is not Role.annotator for r in Role]
    lead = _user(Role.lead)
    assert check_reviewer(lead) is lead
    with pytest.raises(
        Forbidden, match=r"Only a lead or admin may do this .*; a-annotator is an annotator"
    ) as err:
        check_reviewer(_user(Role.annotator))
    assert err.value.code == "wrong_role" and err.value.status == 403


def test_leads_manage_annotators_and_only_admins_manage_leads_and_admins() -> None:
    for role in Role:
        check_may_manage(_user(Role.admin), role)  # an admin manages everyone
    check_may_manage(_user(Role.lead), Role.annotator)
    for role in (Role.lead, Role.admin):
        with pytest.raises(Forbidden, match="only an admin manages leads and admins"):
            check_may_manage(_user(Role.lead), role)


def test_a_generated_secret_key_is_private_kept_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key="")
    key = secret_key(settings)
    path = tmp_path / "data" / "secret_key"
    assert len(key) >= 48 and path.read_text() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key(settings) == key  # restarts keep sessions
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]
    assert secret_key(Settings(data_dir=tmp_path / "data", secret_key="configured")) == "configured"
