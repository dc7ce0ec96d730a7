"""Set up the demo: a fresh SQLite database, the example images in a project, and two users."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from annotate.services import projects, users
from db.blobstore import open_blobstore
from db.migrate import upgrade
from db.models import Project, ProjectMode, User
from db.session import get_engine, session_scope
from db.settings import Settings

DEMO_PROJECT = "demo"
DEMO_USERS = {"demo-annotator": "annotator", "demo-lead": "lead"}
# What `voicecap demo --mode point` asks annotators to point at in the example images ("none in this
# image" is an answer too).
DEMO_LABELS = ["person", "coin", "text"]


def demo_project_name(mode: ProjectMode) -> str:
    return DEMO_PROJECT if mode is ProjectMode.describe else f"{DEMO_PROJECT}-{mode.value}"


@dataclass
class DemoSetup:
    project: str
    images_added: int
    images_total: int
    logins: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {role, password}


def find_example_images(explicit: Path | None = None) -> Path:
    """examples/images of the checkout this code runs from, or of the current directory."""
    candidates = (
        [explicit]
        if explicit
        else [
            Path(__file__).resolve().parents[2] / "examples" / "images",
            Path.cwd() / "examples" / "images",
        ]
    )
    for candidate in candidates:
        if candidate and candidate.is_dir():
            return candidate
    raise FileNotFoundError("No examples/images folder found; pass --images DIR.")


def setup_demo(settings: Settings, images_dir: Path, mode: ProjectMode = ProjectMode.describe) -> DemoSetup:
    engine = get_engine(settings.resolved_database_url)
    upgrade(engine)
    project_name = demo_project_name(mode)
    with session_scope(engine) as session:
        if session.scalar(select(Project).where(Project.name == project_name)) is None:
            projects.create_project(
                session,
                projects.ProjectSpec(
                    name=project_name,
                    min_seconds=5,
                    max_seconds=120,
                    per_image=2,
                    mode=mode,
                    labels=DEMO_LABELS if mode is ProjectMode.point else None,
                ),
            )

    from annotate.services.ingest import ingest, iter_folder

    with session_scope(engine) as session:
        project = projects.get_project(session, project_name)
    summary = ingest(
        engine, open_blobstore(settings.blob_location), settings, project, iter_folder(images_dir)
    )

    logins: dict[str, dict[str, str]] = {}
    with session_scope(engine) as session:
        for name, role in DEMO_USERS.items():
            exists = session.scalar(select(User).where(User.name == name)) is not None
            # Passwords are only ever shown once, so a re-run of the demo sets new ones.
            result = users.reset_password(session, name) if exists else users.add_user(session, name, role)
            logins[name] = {"role": role, "password": result.password}
        images_total = next(n for p, n in projects.list_projects(session) if p.name == project_name)
    return DemoSetup(project_name, summary.added, images_total, logins)
