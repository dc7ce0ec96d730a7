"""QC's counted paths give exactly what QC computed from every take gives, for every filter.

Totals come from qc_flag_counts, first pages from index-ordered ranges merged with the outliers, the
outliers from index ranges beyond the thresholds (integer metrics compared with whole numbers). Each is
compared with the pandas reference over every take, on SQLite and PostgreSQL, as takes are re-measured,
re-flagged, re-captioned and re-recorded, and after `voicecap stats rebuild`'s rebuild.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotate.services import qc, qc_from_takes, summaries
from db.models import Caption, CaptionStatus, Image, Project, Recording, RecordingStatus, Transcript, User
from db.summary_models import ALL_ANNOTATORS, MetricBucket, TakeFigures
from tests.support import factories
from tests.test_summaries import _qc_comparable


def _take(
    session: Session,
    project: Project,
    user: User,
    *,
    seconds: float,
    words: int,
    wpm: float,
    faithfulness: float,
    loudness: float = -20.0,
    silence: float = 0.1,
    meta: dict[str, Any] | None = None,
) -> Recording:
    image = factories.add_image(session, project)
    take = factories.add_recording(
        session,
        image,
        user,
        duration_seconds=seconds,
        loudness_dbfs=loudness,
        silence_fraction=silence,
        status=RecordingStatus.captioned,
        meta=meta or {},
    )
    transcript = factories.add_transcript(session, take, word_count=words, words_per_minute=wpm)
    factories.add_caption(session, image, transcript=transcript, word_count=words, faithfulness=faithfulness)
    return take


@pytest.fixture
def spread_out(session: Session) -> tuple[list[Project], list[User], list[Recording]]:
    """Two projects, three annotators, ordinary takes around typical figures and a few far off them
    (some also breaking a rule, so they carry stored flags too)."""
    rng = random.Random(5)
    projects = [factories.add_project(session, name, min_seconds=5.0, max_seconds=120.0) for name in "AB"]
    users = [factories.add_user(session, name) for name in ("ann", "bob", "cy")]
    takes = []
    for index in range(48):
        project = projects[0] if index % 4 else projects[1]
        takes.append(
            _take(
                session,
                project,
                users[index % 3],
                seconds=round(rng.uniform(20, 40), 2),
                words=rng.randint(40, 60),
                wpm=round(rng.uniform(130, 170), 1),
                faithfulness=round(rng.uniform(0.9, 1.0), 3),
                silence=round(rng.uniform(0.05, 0.2), 3),
            )
        )
    a, b = projects
    ann, bob, cy = users
    odd = [
        (a, ann, dict(seconds=300.0, words=50, wpm=150.0, faithfulness=0.95)),  # too long, far out
        (a, bob, dict(seconds=30.0, words=500, wpm=150.0, faithfulness=0.95)),  # many words
        (a, bob, dict(seconds=30.0, words=50, wpm=420.0, faithfulness=0.2)),  # fast and unfaithful
        (a, cy, dict(seconds=2.0, words=3, wpm=150.0, faithfulness=0.95)),  # too short, few words
        (a, cy, dict(seconds=30.0, words=50, wpm=150.0, faithfulness=0.95, loudness=-55.0)),  # quiet only
        (b, ann, dict(seconds=30.0, words=50, wpm=20.0, faithfulness=0.95, silence=0.8)),  # slow, silent
    ]
    takes += [_take(session, project, user, **figures) for project, user, figures in odd]
    session.commit()
    return projects, users, takes


def _scopes(projects: list[Project], users: list[User]) -> list[dict[str, Any]]:
    return [
        {},
        *({"project_id": p.id} for p in projects),
        *({"project_id": projects[0].id, "annotator_id": u.id} for u in users),
        {"annotator_id": users[1].id},
    ]


def _keeps(flag: str | None, flags: list[str]) -> bool:
    return flag is None or (bool(flags) and flag in ("any", *flags))


def assert_qc_matches_every_take(session: Session, settings, projects, users) -> None:
    """Every scope and flag filter, first page of 3 and of all: counted QC equals QC from every take
    (one reference report per scope; a flag filter keeps the takes carrying the flag, in id order)."""
    session.commit()
    for scope in _scopes(projects, users):
        reference = qc_from_takes.qc_report_from_takes(session, settings, qc.QcFilter(**scope, limit=5000))
        for flag in (None, "any", *qc.QC_FLAGS):
            kept = [t for t in reference["takes"] if _keeps(flag, t["flags"])]
            for limit in (3, 5000) if flag in (None, "any") else (3,):
                f = qc.QcFilter(**scope, flag=flag, limit=limit)
                expected = {**reference, "takes": kept[:limit], "total": len(kept)}
                assert _qc_comparable(qc.qc_report(session, settings, f)) == _qc_comparable(expected), f
    for scope in _scopes(projects, users)[:3]:
        reference = qc_from_takes.qc_report_from_takes(session, settings, qc.QcFilter(**scope, limit=5000))
        for flag in ("any", *qc.QC_FLAGS):
            ids = qc.recordings_with_flag(session, settings, flag, scope.get("project_id"))
            assert ids == [t["recording_id"] for t in reference["takes"] if _keeps(flag, t["flags"])], flag
    assert_medians_match_histograms(session)
    session.commit()


def test_counted_qc_equals_qc_from_every_take(session, settings, spread_out) -> None:
    projects, users, takes = spread_out
    report = qc.qc_report(session, settings, qc.QcFilter(project_id=projects[0].id, flag="any"))
    # The checks below are only worth something if the filters keep stored and outlying takes alike.
    assert {"too_long", "too_short", "unfaithful", "quiet"} <= set(report["flag_counts"])
    assert {"outlier_transcript_words_high", "outlier_words_per_minute_high"} <= set(report["flag_counts"])
    assert_qc_matches_every_take(session, settings, projects, users)

    # Re-measured: an ordinary take becomes far too long, the too-long one ordinary.
    ordinary, long = takes[1], takes[48]
    ordinary.duration_seconds, long.duration_seconds = 400.0, 31.0
    assert_qc_matches_every_take(session, settings, projects, users)

    # Flagged by a stage (meta["qc_flags"], which the reference does not read), then cleared.
    plain = takes[5]
    before = qc_from_takes.qc_report_from_takes(session, settings, qc.QcFilter(flag="any"))
    plain.meta = {"qc_flags": ["count_mismatch"]}
    session.commit()
    mismatch = qc.qc_report(session, settings, qc.QcFilter(flag="count_mismatch"))
    assert [t["recording_id"] for t in mismatch["takes"]] == [plain.id] and mismatch["total"] == 1
    anyflag = qc.qc_report(session, settings, qc.QcFilter(flag="any", limit=5000))
    assert anyflag["total"] == before["total"] + 1
    assert plain.id in {t["recording_id"] for t in anyflag["takes"]}
    plain.meta = {}
    assert_qc_matches_every_take(session, settings, projects, users)

    # Re-captioned: the current caption is replaced by a far less faithful one.
    old = session.scalars(select(Caption).where(Caption.recording_id == takes[3].id)).one()
    old.status = CaptionStatus.superseded
    transcript = session.scalars(select(Transcript).where(Transcript.recording_id == takes[3].id)).one()
    image = session.get(Image, old.image_id)
    factories.add_caption(session, image, transcript=transcript, word_count=50, faithfulness=0.1)
    assert_qc_matches_every_take(session, settings, projects, users)

    # Re-recorded: the fast take is rejected and its annotator records the image again, normally.
    fast = takes[50]
    fast.status = RecordingStatus.rejected
    _take(session, projects[0], users[1], seconds=30.0, words=50, wpm=150.0, faithfulness=0.95)
    assert_qc_matches_every_take(session, settings, projects, users)

    counted = qc.qc_report(session, settings, qc.QcFilter(flag="any", limit=5000))
    summaries.rebuild(session)
    session.commit()
    assert qc.qc_report(session, settings, qc.QcFilter(flag="any", limit=5000)) == counted
    assert_qc_matches_every_take(session, settings, projects, users)


def test_integer_metrics_compare_with_whole_numbers(session, settings, spread_out) -> None:
    """A threshold between two word counts: the takes at or beyond it, exactly, on both sides."""
    projects, _, _ = spread_out
    project = projects[0].id
    words = sorted(
        session.scalars(select(TakeFigures.transcript_words).where(TakeFigures.project_id == project))
    )
    # Thresholds with takes one word inside them too, so a bound off by one would show.
    low = min(w for w in words if w + 1 in words)
    high = max(w for w in words if w - 1 in words)
    assert high - low > 4
    # center ± 3.5 · scale lands half-way between two counts: high - 0.5 and low + 0.5.
    center, scale = (low + high) / 2, (high - low - 1) / 7
    spreads = {(project, "transcript_words"): qc.Spread(center, scale)}
    found = qc.outlying_takes(session, qc.QcFilter(project_id=project), spreads)
    assert sorted(o.flag for o in found) == sorted(
        ["outlier_transcript_words_high"] * sum(w >= high for w in words)
        + ["outlier_transcript_words_low"] * sum(w <= low for w in words)
    )


def assert_medians_match_histograms(session: Session) -> None:
    """The medians read through qc_medians equal the weighted medians of every bucket of each
    annotator's histogram."""
    b = MetricBucket
    histograms: dict[tuple[int, int, str], list[tuple[float, int]]] = defaultdict(list)
    rows = select(b.project_id, b.user_id, b.metric, b.takes, b.total).where(
        b.user_id != ALL_ANNOTATORS, b.takes > 0
    )
    for project, user, metric, takes, total in session.execute(rows):
        histograms[(project, user, metric)].append((total / takes, takes))
    expected = {key: qc.weighted_median(points) for key, points in histograms.items()}
    assert qc.annotator_medians(session, qc.QcFilter()) == pytest.approx(expected)
