"""Shared fixtures. Every test that takes `db_url` (or anything built on it) runs on SQLite and PostgreSQL."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.blobstore import BlobStore
from db.migrate import upgrade
from db.session import dispose_engines, get_engine, read_only_engine
from db.settings import Settings, get_settings, reset_settings_cache
from tests.support.databases import postgres_available, postgres_database, require, sqlite_url
from tests.support.seaweed import Seaweed, running_seaweed

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_pg_ok: bool | None = None


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    global _pg_ok
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    if _pg_ok is None:
        _pg_ok = postgres_available()
    require(_pg_ok, "PostgreSQL is not reachable at 127.0.0.1:5432 (set VOICECAP_TEST_PG_URL)")
    with postgres_database() as url:
        yield url


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointing at this test's database and data directory (also seen by subprocesses)."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("VOICECAP_DATA_DIR", str(data_dir))
    monkeypatch.setenv("VOICECAP_DATABASE_URL", db_url)
    monkeypatch.setenv("VOICECAP_SECRET_KEY", "test-secret-key")
    reset_settings_cache()
    yield get_settings()
    dispose_engines()
    reset_settings_cache()


@pytest.fixture
def engine(settings: Settings) -> Engine:
    engine = get_engine()
    upgrade(engine)
    return engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for seeding and checking. Its SQLite transactions begin DEFERRED, so a test that reads
    and then calls the server or CLI does not hold the write lock they need."""
    with sessionmaker(bind=read_only_engine(engine), expire_on_commit=False)() as session:
        yield session


@pytest.fixture
def blobs(settings: Settings) -> BlobStore:
    return BlobStore(settings.blob_dir)


@pytest.fixture
def app(engine: Engine, settings: Settings):
    from annotate.api.app import create_app

    return create_app(settings)


@pytest.fixture
def server(app) -> Iterator[str]:
    """The real app over real HTTP on a loopback port; yields its base URL."""
    from tests.support.server import live_server

    with live_server(app) as url:
        yield url


@pytest.fixture
def make_user(session: Session):
    """make_user(name, role) -> (User, password), committed."""
    from tests.support import factories

    def make(name: str, role: str = "annotator", password: str = "correct-horse") -> tuple[object, str]:
        user = factories.add_user(session, name, role, password)
        session.commit()
        return user, password

    return make


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Seaweed]:
    """One SeaweedFS server (S3 API on a loopback port) for the whole test session."""
    with running_seaweed() as server:
        yield server


@pytest.fixture
def s3_blob_url(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the AWS_* variables that reach it are set for this test and its subprocesses."""
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{seaweed.new_bucket()}/blobs"


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder as this process's temp folder: what a spooled put leaves behind shows up in it."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder
