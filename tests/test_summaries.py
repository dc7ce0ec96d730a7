"""The summary tables counted change by change equal a rebuild from scratch, on SQLite and PostgreSQL.

A mixed workload runs through the real services: uploads through intake (and older takes on earlier
days), a skip, the transcribe stage's queue calls (claim, complete, a permanent failure, a worker that
died holding a lease), the real clean stage (rules cleaner), a merged caption, review decisions that
replace each other, edits, send-backs and a requeue of failed takes. After each phase the running counts
must equal `rebuild`, and the dashboard's figures from summaries must equal the pandas figures computed
from every take.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from annotate.services import assignments, qc, qc_from_takes, review, stats, summaries
from annotate.services.intake import accept_recording
from db import queue
from db.migrate import alembic_config, upgrade
from db.models import Caption, CaptionKind, CaptionStatus, Project, Recording, RecordingStatus, utcnow
from db.session import get_engine
from db.settings import get_settings
from db.summary_models import (
    ALL_ANNOTATORS,
    ActiveDay,
    AnnotatorActiveDays,
    AnnotatorDurationBucket,
    DailySummary,
    DurationBucket,
    MetricBucket,
    QcFlag,
    QcFlagCount,
    QcMedian,
    SummaryRollup,
    TakeFigures,
)
from tests.support import factories
from tests.support.review_seed import BOATS_TEXT, IMAGES, PASSWORD, SPEECH
from transcribe.stages.clean import CleanProcessor
from transcribe.worker import Worker, WorkerConfig

TRANSCRIBE = queue.get_stage("transcribe")


# Counters (a row of zeros counts nothing) and sets (every row is a fact).
COUNTERS = (
    DailySummary,
    SummaryRollup,
    DurationBucket,
    AnnotatorDurationBucket,
    AnnotatorActiveDays,
    QcFlagCount,
    MetricBucket,
    QcMedian,
)
SETS = (ActiveDay, TakeFigures, QcFlag)


def summary_rows(session: Session) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Every summary row that counts anything, rounded where sums of floats may differ in the last bit."""
    rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for table in (*COUNTERS, *SETS):
        keys = [c for c in table.__table__.columns if c.primary_key]
        others = [c for c in table.__table__.columns if not c.primary_key]
        for row in session.execute(select(*keys, *others)):
            values = tuple(round(v, 6) if isinstance(v, float) else v for v in row[len(keys) :])
            if table in SETS or any(values):
                rows[(table.__tablename__, *row[: len(keys)])] = values
    return rows


def assert_incremental_equals_rebuilt(session: Session) -> None:
    session.commit()
    counted = summary_rows(session)
    summaries.rebuild(session)
    session.commit()
    assert counted == summary_rows(session)
    for by in stats.GROUPINGS:
        from_summaries = stats.stats(session, None, by)
        from_takes = stats.stats_from_takes(session, None, by)
        assert _comparable(from_summaries, by) == _comparable(from_takes, by), by
    for project_id in (None, *session.scalars(select(Project.id))):
        live, reference = (
            stats.live_counts(session, project_id),
            stats.live_counts_from_rows(session, project_id),
        )
        assert {**live, "at": None} == {**reference, "at": None}
    assert _qc_comparable(qc.qc_report(session, get_settings(), qc.QcFilter(limit=5000))) == _qc_comparable(
        qc_from_takes.qc_report_from_takes(session, get_settings(), qc.QcFilter(limit=5000))
    )
    session.commit()  # end the read: on SQLite an open transaction holds the write lock


def _qc_comparable(report: dict[str, Any]) -> dict[str, Any]:
    """What QC from summaries must agree on with QC from every take (medians come from buckets)."""
    return {
        "total": report["total"],
        "flag_counts": report["flag_counts"],
        "takes": [
            (t["recording_id"], t["annotator"], sorted(t["flags"]), t["faithfulness"], t["words_per_minute"])
            for t in report["takes"]
        ],
        "annotators": [
            (a["project_id"], a["annotator"], a["takes"], a["flagged_takes"], a["outliers"])
            for a in report["annotators"]
        ],
    }


def _comparable(result: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """The figures both ways must agree on. The median comes from ~5% buckets: equal to the exact one
    within that. Images done counts live takes: distinct images per annotator (one take per image and
    annotator), but the shared image of a two-takes-per-image project counts twice per project and day."""
    rows = [*result["rows"], {"key": "totals", **result["totals"]}]
    skip = set() if by == "annotator" else {"images_done"}
    return [
        {
            k: (round(v, 1) if k == "median_seconds_per_take" and v is not None else v)
            for k, v in row.items()
            if k not in skip and not (row["key"] == "totals" and k == "images_done")
        }
        for row in rows
    ]


def upload(session: Session, blobs, settings, project, image, user) -> Recording:
    with (SPEECH / "boats.wav").open("rb") as audio:
        recording, _ = accept_recording(
            session,
            blobs,
            settings,
            project=project,
            image=image,
            user=user,
            client_uuid=str(uuid.uuid4()),
            content_type="audio/wav",
            chunks=iter(lambda: audio.read(65536), b""),
        )
    session.commit()
    return recording


def transcribe_stage(session: Session, *, fail: set[int], die: set[int]) -> None:
    """What the transcribe stage does to the rows it claims: store a transcript and complete, fail a
    take for good, or hold it until the lease runs out (a worker that died)."""
    ids = queue.claim(session, TRANSCRIBE, "w1", limit=100, lease_seconds=60, max_crashes=1)
    # As if each dying take had been claimed alone (an earlier batch of it died): its worker's death
    # now counts against it, and with max_crashes=1 the expired lease fails it.
    session.execute(update(Recording).where(Recording.id.in_(die)).values(isolated=True))
    session.commit()
    for recording in session.scalars(select(Recording).where(Recording.id.in_(ids))):
        if recording.id in fail:
            queue.fail(session, TRANSCRIBE, "w1", recording.id, "undecodable", 1, 0, permanent=True)
        elif recording.id not in die:
            factories.add_transcript(
                session,
                recording,
                BOATS_TEXT,
                revision=recording.revision,
                word_count=34,
                words_per_minute=150.0,
            )
            assert queue.complete(session, TRANSCRIBE, "w1", recording.id)
        session.commit()
    queue.expire_leases(session, TRANSCRIBE, max_crashes=1, now=utcnow() + timedelta(minutes=5))
    session.commit()
    session.expire_all()  # the queue wrote through Core: reload what this session holds


def clean_stage(engine, settings) -> None:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    config = WorkerConfig(
        worker_id="cleaner", batch_size=4, lease_seconds=60, max_attempts=2, poll_seconds=0.1
    )
    Worker(factory, [CleanProcessor.from_settings(settings)], config).run(drain=True)


def pending_captions(session: Session) -> list[Caption]:
    session.expire_all()
    query = select(Caption).where(Caption.status == CaptionStatus.pending, Caption.recording_id.is_not(None))
    return list(session.scalars(query.order_by(Caption.id)))


@pytest.mark.slow
def test_incremental_summaries_equal_a_rebuild(session, engine, blobs, settings) -> None:
    pictures = sorted(IMAGES.glob("*.jpg"))
    harbour = factories.add_project(session, "Harbour", min_seconds=5.0, max_seconds=120.0)
    pairs = factories.add_project(session, "Pairs", min_seconds=5.0, max_seconds=120.0, per_image=2)
    lead = factories.add_user(session, "lena", "lead", PASSWORD)
    ann, bob = (factories.add_user(session, name, "annotator", PASSWORD) for name in ("ann", "bob"))
    images = [factories.add_image(session, harbour, blobs=blobs, data=p, source=str(p)) for p in pictures[:4]]
    shared = factories.add_image(session, pairs, blobs=blobs, data=pictures[4], source=str(pictures[4]))
    session.commit()

    # Uploads today through intake; older takes on earlier days (a quiet day between them).
    takes = [upload(session, blobs, settings, harbour, image, ann) for image in images[:3]]
    takes += [upload(session, blobs, settings, pairs, shared, user) for user in (ann, bob)]
    for days, image in ((2, images[3]), (4, images[0])):
        factories.add_recording(
            session, image, bob, duration_seconds=20.0 + days, created_at=utcnow() - timedelta(days=days)
        )
    lease = assignments.next_assignment(session, settings, user=bob, project=harbour)
    assert lease is not None
    assignments.skip_assignment(session, user=bob, assignment_id=lease.id, reason="other", note="blurry")
    assert_incremental_equals_rebuilt(session)

    # The transcribe stage: one take fails for good, one worker dies holding a take.
    transcribe_stage(session, fail={takes[1].id}, die={takes[2].id})
    assert session.get(Recording, takes[2].id).status == RecordingStatus.failed
    session.commit()
    assert_incremental_equals_rebuilt(session)

    # The real clean stage (a worker in its own sessions) writes the takes' captions.
    clean_stage(engine, settings)
    # A caption merged from both takes of the shared image (the llm cleaner's merge sweep stores these
    # as any caption: one row naming no take), counted for its project only.
    merged = factories.add_caption(session, shared, "Two boats.", kind=CaptionKind.merged)
    assert_incremental_equals_rebuilt(session)
    review.decide(session, merged.id, lead, "reject", reason="too short")

    # Reviews: decisions replacing earlier ones, an edit, a rejection undone, a send-back.
    session.commit()
    first, second, *rest = pending_captions(session)
    review.decide(session, first.id, lead, "approve")
    review.decide(session, second.id, lead, "reject", reason="wrong boat")
    session.commit()
    assert_incremental_equals_rebuilt(session)
    review.decide(session, first.id, lead, "edit", text="Three red boats on a calm lake.")
    review.decide(session, second.id, lead, "approve")
    review.decide(session, rest[0].id, lead, "retranscribe", reason="misheard")
    session.commit()
    assert_incremental_equals_rebuilt(session)

    # Failed takes requeued, transcribed and cleaned again; the sent-back take too.
    assert queue.requeue_failed(session) == 2
    session.commit()
    transcribe_stage(session, fail=set(), die=set())
    clean_stage(engine, settings)
    assert_incremental_equals_rebuilt(session)
    session.expire_all()
    figures = {r["key"]: r for r in stats.stats(session, None, "annotator")["rows"]}
    assert figures["ann"]["takes"] == 4 and figures["bob"]["takes"] == 3


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "annotate.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )


def test_stats_rebuild_command_recounts_a_project(session, blobs) -> None:
    project = factories.add_project(session, "Harbour")
    ann = factories.add_user(session, "ann", "annotator", PASSWORD)
    image = factories.add_image(session, project, blobs=blobs, data=sorted(IMAGES.glob("*.jpg"))[0])
    factories.add_recording(session, image, ann, duration_seconds=42.0)
    session.commit()
    for table in (*COUNTERS, *SETS):  # as after upgrading a database that held takes
        session.execute(table.__table__.delete())
    session.commit()
    assert stats.stats(session, project.id, "project")["rows"] == []
    session.commit()  # end the read: the CLI writes from another process

    result = _cli("stats", "rebuild", "Harbour", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"project_id": project.id, "takes": 1, "summary_rows": 1}
    session.commit()
    row = stats.stats(session, project.id, "project")["rows"][0]
    assert (row["key"], row["takes"], row["median_seconds_per_take"]) == ("Harbour", 1, 42.0)
    assert row["takes_per_day"] == 1.0  # its day is marked active again
    assert session.scalar(select(TakeFigures.duration_seconds)) == 42.0
    missing = _cli("stats", "rebuild", "Nowhere")
    assert missing.returncode == 1 and "No project named" in missing.stderr
    assert _cli("stats", "Harbour", "extra").returncode != 0


def test_rebuilding_one_project_keeps_annotators_lengths_across_projects(session, blobs) -> None:
    """An annotator's histogram across projects is counted take by take; rebuilding one project must
    leave it as it was (not add that project's takes a second time) and the median over all projects
    must still be the one of all their takes."""
    ann = factories.add_user(session, "ann", "annotator", PASSWORD)
    projects = {}
    for name, lengths in (("Harbour", (10.0, 12.0)), ("Quay", (30.0,))):
        projects[name] = factories.add_project(session, name)
        image = factories.add_image(
            session, projects[name], blobs=blobs, data=sorted(IMAGES.glob("*.jpg"))[0]
        )
        for seconds in lengths:
            factories.add_recording(session, image, ann, duration_seconds=seconds)
    session.commit()
    histogram = select(AnnotatorDurationBucket.bucket, AnnotatorDurationBucket.takes).order_by("bucket")
    counted = session.execute(histogram).all()
    assert [n for _, n in counted] == [1, 1, 1]
    before = stats.stats(session, None, "annotator")["rows"]
    assert [(r["key"], r["takes"], r["median_seconds_per_take"]) for r in before] == [("ann", 3, 12.0)]

    summaries.rebuild(session, projects["Harbour"].id)
    session.commit()
    assert session.execute(histogram).all() == counted
    assert stats.stats(session, None, "annotator")["rows"] == before


def test_migration_0012_derives_annotators_lengths_from_the_per_project_ones(settings) -> None:
    """A database with duration histograms upgraded to 0012 gets each annotator's histogram across
    projects summed from the per-annotator rows (not the per-day or per-project ones), and down and up
    again gives the same."""
    engine = get_engine()
    upgrade(engine)
    with Session(engine) as session:
        first, second = (factories.add_project(session, name).id for name in ("Harbour", "Quay"))
        session.commit()
    rows = [  # project, annotator, day, bucket, takes, seconds
        (first, 5, "", 90, 2, 20.0),
        (second, 5, "", 90, 1, 11.0),
        (second, 5, "", 95, 3, 39.0),
        (first, 6, "", 90, 4, 40.0),
        (first, 5, "2026-12-01", 90, 2, 20.0),  # per day: counted in the per-annotator row already
        (first, ALL_ANNOTATORS, "", 90, 6, 60.0),  # the project's
    ]
    columns = ("project_id", "user_id", "day", "bucket", "takes", "seconds")
    with engine.begin() as conn:
        conn.execute(DurationBucket.__table__.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
        conn.execute(AnnotatorDurationBucket.__table__.delete())
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    upgrade(engine)
    histogram = select(
        AnnotatorDurationBucket.user_id,
        AnnotatorDurationBucket.bucket,
        AnnotatorDurationBucket.takes,
        AnnotatorDurationBucket.seconds,
    ).order_by(AnnotatorDurationBucket.user_id, AnnotatorDurationBucket.bucket)
    with engine.connect() as conn:
        assert conn.execute(histogram).all() == [(5, 90, 3, 31.0), (5, 95, 3, 39.0), (6, 90, 4, 40.0)]


def test_ingest_counts_its_images(session, engine, blobs, settings) -> None:
    from annotate.services.ingest import ingest, items_from_source

    project = factories.add_project(session, "Harbour")
    session.commit()
    result = ingest(engine, blobs, settings, project.id, items_from_source(str(IMAGES)), workers=1)
    again = ingest(engine, blobs, settings, project.id, items_from_source(str(IMAGES)), workers=1)
    assert result.added > 0 and again.added == 0  # a re-run adds nothing, so counts nothing
    session.expire_all()
    live = stats.live_counts(session, project.id)
    assert (live["images"], live["images_complete"]) == (result.added, 0)
    assert live == {**stats.live_counts_from_rows(session, project.id), "at": live["at"]}
