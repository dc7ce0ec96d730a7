"""Smaller hardening items (issue #10, item 6): security headers on every answer, the generated secret
key private from its first byte, and leads shown an image's name rather than the server's path to it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from annotate.security import secret_key
from annotate.services.image_names import public_source
from db.settings import Settings
from tests.support.review_seed import PASSWORD, seed
from tests.support.server import login


@pytest.mark.parametrize(
    "path", ["/login", "/review", "/static/js/login.js", "/api/health", "/api/me", "/api/nowhere", "/"]
)
def test_every_answer_carries_the_security_headers(server, path: str) -> None:
    response = httpx.get(f"{server}{path}", follow_redirects=False)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_generated_secret_key_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Created 0600, not chmod-ed afterwards: with chmod gone the mode must still be right.
    monkeypatch.setattr(Path, "chmod", lambda *_a, **_k: None)
    monkeypatch.setattr(os, "chmod", lambda *_a, **_k: None)
    old_umask = os.umask(0)
    try:
        key = secret_key(Settings(data_dir=tmp_path / "data", secret_key=""))
    finally:
        os.umask(old_umask)
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 48 and secret_key(Settings(data_dir=tmp_path / "data", secret_key="")) == key
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary left behind


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("/srv/voicecap/incoming/2026/heron.jpg", "heron.jpg"),
        ("/srv/uploads/batch.zip!/birds/heron.jpg", "batch.zip!/birds/heron.jpg"),
        (
            "https://user:secret@images.example:8443/a/heron.jpg?size=l",
            "https://images.example:8443/a/heron.jpg?size=l",
        ),
        ("upload.jpg", "upload.jpg"),
    ],
)
def test_public_source_names(source: str, shown: str) -> None:
    assert public_source(source) == shown


def test_a_lead_sees_the_image_name_not_the_server_path(server, session, blobs) -> None:
    data = seed(session, blobs, takes=1)
    assert Path(data.images[0].source).is_absolute()
    client = login(server, "lena", PASSWORD)
    detail = client.get(f"/api/review/captions/{data.captions[0].id}").json()
    assert detail["image"]["source"] == Path(data.images[0].source).name
