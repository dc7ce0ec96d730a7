"""Migration 0011 (qc_medians) up and down, on SQLite and PostgreSQL: the table is filled from the
histograms the database already counted, and a downgrade drops it and nothing else."""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from annotate.services import qc
from db.migrate import check_schema, current_revision, upgrade
from db.session import get_engine
from db.settings import Settings
from db.summary_models import QcMedian
from db.take_qc import recount_medians
from tests.support import factories
from tests.test_db import _downgrade, _seed
from tests.test_qc_counted import assert_medians_match_histograms


def _medians(session: Session) -> list[tuple[int, int, str, int, int, int]]:
    m = QcMedian
    query = select(m.project_id, m.user_id, m.metric, m.takes, m.bucket, m.below)
    return [tuple(row) for row in session.execute(query.order_by(m.project_id, m.user_id, m.metric))]


def test_migration_0011_fills_qc_medians_from_the_histograms(settings: Settings) -> None:
    engine = get_engine()
    upgrade(engine, "0009")
    with Session(engine) as session:  # takes counted into the 0009 histograms as they are stored
        project, image, user = _seed(session)
        other = factories.add_user(session, "bob")
        for index, seconds in enumerate((31.0, 12.0, 55.5, 40.0, 8.25, 90.0, 33.0)):
            factories.add_recording(session, image, user if index % 3 else other, duration_seconds=seconds)
        session.commit()
        project_id, ann, bob = project.id, user.id, other.id

    upgrade(engine)

    check_schema(engine)
    with Session(engine) as session:
        filled = _medians(session)
        assert {(row[1], row[2], row[3]) for row in filled} >= {
            (ann, "duration_seconds", 4),
            (bob, "duration_seconds", 3),
        }
        assert_medians_match_histograms(session)
        assert qc.annotator_medians(session, qc.QcFilter())[(project_id, bob, "duration_seconds")] == 33.0
        recount_medians(session.connection())
        assert _medians(session) == filled
        session.commit()

    _downgrade(engine, "0009")

    assert current_revision(engine) == "0009"
    assert "qc_medians" not in inspect(engine).get_table_names()
    assert "metric_buckets" in inspect(engine).get_table_names()
