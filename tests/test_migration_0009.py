"""Migration 0009 (summary roll-ups, day marks, QC figures, flags and histograms) up and down, on SQLite
and PostgreSQL: the new tables start empty, `stats rebuild` fills them from the rows a database already
holds, and a downgrade drops them and nothing else."""

from __future__ import annotations

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from annotate.services import qc, stats, summaries
from db.migrate import check_schema, current_revision, upgrade
from db.models import Recording
from db.session import get_engine
from db.settings import Settings
from db.summary_models import QcFlag, SummaryRollup, TakeFigures
from tests.support import factories
from tests.test_db import _downgrade, _seed

NEW = {
    "summary_rollups",
    "active_days",
    "annotator_active_days",
    "take_figures",
    "qc_flags",
    "qc_flag_counts",
    "metric_buckets",
}


def test_migration_0009_adds_rollups_and_qc_tables_filled_by_rebuild(settings: Settings) -> None:
    engine = get_engine()
    upgrade(engine, "0008")
    assert not NEW & set(inspect(engine).get_table_names())
    with Session(engine) as session:  # takes stored before the upgrade: one too short for its project
        project, image, user = _seed(session)
        factories.add_recording(session, image, user, duration_seconds=30.0)
        factories.add_recording(session, image, user, duration_seconds=0.5)
        session.commit()
        project_id = project.id

    upgrade(engine)

    check_schema(engine)
    assert set(inspect(engine).get_table_names()) >= NEW
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SummaryRollup)) == 0
        summaries.rebuild(session)
        session.commit()
        row = stats.stats(session, project_id, "annotator")["rows"][0]
        assert (row["key"], row["takes"], row["takes_per_day"]) == ("ann", 2, 2.0)
        assert session.scalar(select(func.count()).select_from(TakeFigures)) == 2
        report = qc.qc_report(session, settings, qc.QcFilter(project_id=project_id, flag="too_short"))
        assert [t["duration_seconds"] for t in report["takes"]] == [0.5]
        assert session.scalar(select(QcFlag.flag)) == "too_short"

    _downgrade(engine, "0008")

    assert current_revision(engine) == "0008"
    assert not NEW & set(inspect(engine).get_table_names())
    with Session(engine) as session:  # the takes survived
        assert session.scalar(select(func.count()).select_from(Recording)) == 2
    upgrade(engine)  # and up again
    check_schema(engine)
