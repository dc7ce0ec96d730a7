"""Migration 0010 (point sets stored rendered) up and down, on SQLite and PostgreSQL: sets stored before
it are rendered by the upgrade exactly as the export renders them now (its frozen copy agrees with
export/pointing.point_set_export), and a downgrade drops the two columns and nothing else."""

from __future__ import annotations

import json

from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from annotate.services.export.pointing import point_set_export
from db.migrate import check_schema, current_revision, upgrade
from db.models import PointSet
from db.session import get_engine
from db.settings import Settings
from tests.support import factories
from tests.test_db import _downgrade, _insert_as_in_database, _seed

P = factories.point_values
SETS = [  # (take, version, points, absent labels)
    (0, 1, [P(0.9, 0.9, 1.0, "deck chair")], ["boat"]),
    (
        0,
        2,  # a reviewer's correction
        [
            P(0.5, 0.25, 0.6, "deck chair"),
            P(0.1234, 0.4567, 0.8, "deck chair"),
            P(0.0449, 0.9951, None, "deck chair"),
            P(0.33333, 0.66666, 1.4, 'the "big" boat & <co>'),
        ],
        ["person", "deck chair"],
    ),
    (1, 1, [P(0.875, 0.125, 1.1), P(0, 1, 1.2)], []),  # narrate clicks, no label; ints as a client sends
    (2, 1, [], ["gull"]),  # only "none" answers
    (3, 1, [], []),
]


def _columns() -> set[str]:
    return {c["name"] for c in inspect(get_engine()).get_columns("point_sets")}


def test_migration_0010_renders_stored_point_sets_as_the_export_does(settings: Settings) -> None:
    engine = get_engine()
    upgrade(engine, "0009")
    assert not {"export_groups", "points_text"} & _columns()
    with Session(engine) as session:
        _project, image, user = _seed(session)
        takes = [factories.add_recording(session, image, user) for _ in range(4)]
        for take, version, points, absent in SETS:
            values = factories.point_set_values(takes[take].id, points, version=version, absent_labels=absent)
            _insert_as_in_database(session, PointSet, values)
        session.commit()

    upgrade(engine)

    check_schema(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT recording_id, points, absent_labels, export_groups, points_text FROM point_sets")
        ).all()
    assert len(rows) == len(SETS)
    for recording_id, points, absent, groups, points_text in rows:
        points = json.loads(points) if isinstance(points, str) else points
        absent = json.loads(absent) if isinstance(absent, str) else absent
        assert (groups, points_text) == point_set_export(points, absent, recording_id)
    assert any(t is not None and "&lt;co&gt;" in t for *_, t in rows)  # the label escaped, as Molmo's

    _downgrade(engine, "0009")

    assert current_revision(engine) == "0009"
    assert not {"export_groups", "points_text"} & _columns()
    with Session(engine) as session:  # the sets survived
        assert session.scalar(select(func.count()).select_from(PointSet.__table__)) == len(SETS)
    upgrade(engine)  # and up again
    check_schema(engine)
