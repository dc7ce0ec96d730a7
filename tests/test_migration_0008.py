"""Migration 0008 (pointing and per-project languages) up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from db.migrate import check_schema, upgrade
from db.models import PointSet, Project, ProjectMode, Recording, Trace
from db.session import get_engine
from db.settings import Settings
from tests.test_db import _downgrade, _insert_recordings_as_in_database, _seed_as_in_database

TABLES = {"traces", "point_sets", "pointing_alignments"}


def test_migration_0008_defaults_existing_projects_and_downgrades(settings: Settings) -> None:
    engine = get_engine()
    upgrade(engine, "0007")
    with Session(engine) as session:
        image, user = _seed_as_in_database(session)
        recording_id = _insert_recordings_as_in_database(session, image, user.id, [{}])[0]

    upgrade(engine)
    check_schema(engine)
    with Session(engine) as session:
        project = session.scalars(select(Project)).one()
        # An existing project keeps today's flow and English strings.
        assert (project.mode, project.labels, project.interface_language, project.caption_language) == (
            ProjectMode.describe,
            [],
            "en",
            None,
        )
        session.add(Trace(recording_id=recording_id, segments=[[[0.1, 0.2, 0.0]]], sample_count=1))
        session.add(
            PointSet(recording_id=recording_id, points=[{"x": 0.5, "y": 0.5, "t": 1.0, "label": "cat"}])
        )
        session.commit()

    _downgrade(engine, "0007")
    assert not TABLES & set(inspect(engine).get_table_names())
    columns = {c["name"] for c in inspect(engine).get_columns("projects")}
    assert not {"mode", "labels", "interface_language", "caption_language"} & columns
    with Session(engine) as session:  # the take outlives the pointing tables
        assert session.scalar(select(Recording.id)) == recording_id

    upgrade(engine)
    check_schema(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
