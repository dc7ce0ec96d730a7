"""Dashboard figures, QC outliers and the `voicecap stats` / `voicecap qc` commands, on both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select

from annotate.errors import InvalidInput
from annotate.services import qc, review, stats, summary_stats
from annotate.services.users import add_user
from db.models import Project, Recording, User, utcnow
from db.summary_models import ALL_ANNOTATORS, ALL_DAYS, DurationBucket
from tests.support.factories import add_project
from tests.support.review_seed import BOATS_CAPTION, IMAGES, add_image, add_take, seed


@pytest.fixture
def decided(session, blobs):
    """Three takes: ann's first approved, bob's rejected, ann's second edited (approved)."""
    data = seed(session, blobs)
    first, second, third = data.captions
    review.decide(session, first.id, data.lead, "approve")
    review.decide(session, second.id, data.lead, "reject", reason="invented a flag")
    review.decide(session, third.id, data.lead, "edit", text="Three red boats on a calm lake.")
    session.commit()
    return data


def _by_key(result: dict) -> dict:
    return {row["key"]: row for row in result["rows"]}


def test_stats_by_annotator(session, decided) -> None:
    rows = _by_key(stats.stats(session, decided.project.id, "annotator"))
    ann, bob = rows["ann"], rows["bob"]
    assert (ann["takes"], ann["images_done"], ann["reviewed"], ann["approved"]) == (2, 2, 2, 2)
    assert ann["approval_rate"] == 1.0 and ann["rejection_rate"] == 0.0
    assert ann["audio_hours"] == pytest.approx(2 * 12.51 / 3600, abs=1e-4)
    assert ann["median_seconds_per_take"] == pytest.approx(12.51)
    # ann's current captions: the approved original and the edit (7 words).
    assert ann["words_per_caption"] == pytest.approx((len(BOATS_CAPTION.split()) + 7) / 2)
    assert ann["takes_per_day"] == 2.0
    assert (bob["takes"], bob["images_done"], bob["rejected"], bob["rejection_rate"]) == (1, 0, 1, 1.0)


def test_stats_by_project_and_totals(session, decided) -> None:
    result = stats.stats(session, None, "project")
    harbour = _by_key(result)["Harbour"]
    assert (harbour["takes"], harbour["images_done"], harbour["reviewed"]) == (3, 2, 3)
    assert harbour["approval_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["totals"]["takes"] == 3 and result["totals"]["rejected"] == 1


def test_stats_by_day_fills_quiet_days(session, blobs, decided) -> None:
    image = decided.images[0]
    add_take(session, blobs, image, decided.annotators[1], created_at=utcnow() - timedelta(days=3))
    session.commit()
    rows = stats.stats(session, decided.project.id, "day")["rows"]
    assert len(rows) == 4
    assert [r["takes"] for r in rows] == [1, 0, 0, 3]
    assert rows[-1]["reviewed"] == 3 and rows[1]["audio_hours"] == 0.0


def test_stats_on_an_empty_database(session) -> None:
    for by in stats.GROUPINGS:
        assert stats.stats(session, None, by)["rows"] == []
    live = stats.live_counts(session)
    assert live["review_queue"] == 0 and live["recordings"]["uploaded"] == 0


def test_live_counts(session, decided) -> None:
    live = stats.live_counts(session, decided.project.id)
    assert live["captions"] == {"approved": 2, "rejected": 1, "superseded": 1}
    assert live["review_queue"] == 0 and live["reviews_last_24h"] == 3
    assert live["recordings"]["captioned"] == 2 and live["recordings"]["rejected"] == 1
    assert live["images"] == 3 and live["images_complete"] == 2


def test_medians_found_by_running_sums_equal_the_histograms_median(session, blobs, decided) -> None:
    """The database finds each key's middle bucket(s) with running sums: the result must be the median
    of the key's histogram (summed here in Python from the finest grain), for odd and even counts, a
    middle split over two buckets, and keys summed over annotators, days and projects."""
    ann, bob = decided.annotators
    other = add_project(session, "Quay")
    session.flush()
    quay_image = add_image(session, blobs, other, sorted(IMAGES.glob("*.jpg"))[-1])
    earlier = utcnow() - timedelta(days=2)
    for seconds, who, image, when in [
        (3.0, ann, decided.images[0], earlier),
        (40.0, ann, decided.images[1], earlier),
        (90.0, bob, decided.images[2], None),
        (2.0, bob, quay_image, earlier),
        (2.04, bob, quay_image, earlier),
        (7.5, ann, quay_image, None),
    ]:
        add_take(session, blobs, image, who, duration=seconds, created_at=when)
    session.commit()

    b = DurationBucket
    finest = select(Project.id, Project.name, User.name, b.day, b.bucket, b.takes, b.seconds)
    finest = finest.join(Project, Project.id == b.project_id).join(User, User.id == b.user_id)
    finest = finest.where(b.user_id != ALL_ANNOTATORS, b.day != ALL_DAYS)
    rows = session.execute(finest).all()
    assert len({r[4] for r in rows}) >= 6  # the takes fall in several buckets
    for project_id in (None, decided.project.id, other.id):
        for by, field in (("project", 1), ("annotator", 2), ("day", 3), ("all", None)):
            histograms: dict = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
            for row in rows:
                if project_id is None or row[0] == project_id:
                    bucket = histograms["all" if field is None else row[field]][row[4]]
                    bucket[0] += row[5]
                    bucket[1] += row[6]
            expected = {
                key: round(summary_stats.median_of([(k, n, s) for k, (n, s) in h.items()]), 4)
                for key, h in histograms.items()
            }
            found = {
                r["key"]: r["median_seconds_per_take"]
                for r in summary_stats.grouped_rows(session, project_id, by)
                if r["takes"]
            }
            assert found == expected, (project_id, by)


@pytest.fixture
def varied(session, blobs, settings):
    """Six ordinary takes by ann and bob, and carl, who speaks far too fast and once far too briefly."""
    data = seed(session, blobs, takes=2)
    carl = add_user(session, "carl", "annotator", "correct-horse").user
    image = add_image(session, blobs, data.project, _other(data))
    for index, wpm in enumerate((140.0, 145.0, 155.0, 160.0)):
        add_take(
            session, blobs, image, data.annotators[index % 2], words_per_minute=wpm, duration=12.0 + index
        )
    add_take(session, blobs, image, carl, words_per_minute=400.0, duration=13.0)
    add_take(session, blobs, image, carl, words_per_minute=390.0, duration=3.0, faithfulness=0.5)
    session.commit()
    return data


def _other(data):
    used = {img.source for img in data.images}
    return next(p for p in sorted(IMAGES.glob("*.jpg")) if str(p) not in used)


def test_qc_flags_takes_and_annotators(session, settings, varied) -> None:
    report = qc.qc_report(session, settings, qc.QcFilter(project_id=varied.project.id))
    assert report["total"] == 8
    carl = next(a for a in report["annotators"] if a["annotator"] == "carl")
    assert "words_per_minute_high" in carl["outliers"] and carl["z_words_per_minute"] > qc.OUTLIER_Z
    assert all(not a["outliers"] for a in report["annotators"] if a["annotator"] != "carl")
    short = next(t for t in report["takes"] if t["duration_seconds"] == 3.0)
    assert {"too_short", "unfaithful", "outlier_words_per_minute_high"} <= set(short["flags"])
    only = qc.qc_report(session, settings, qc.QcFilter(project_id=varied.project.id, flag="too_short"))
    assert [t["recording_id"] for t in only["takes"]] == [short["recording_id"]]
    anyflag = qc.qc_report(session, settings, qc.QcFilter(flag="any"))
    # carl's two takes, and bob's seeded caption whose faithfulness (0.81) is under 1 - 0.15.
    assert sorted((t["annotator"], "unfaithful" in t["flags"]) for t in anyflag["takes"]) == [
        ("bob", True),
        ("carl", False),
        ("carl", True),
    ]
    assert report["flag_counts"]["outlier_words_per_minute_high"] == 2


def test_robust_z_ignores_the_outliers_it_measures() -> None:
    import pandas as pd

    values = pd.Series([150.0, 152.0, 148.0, 151.0, 149.0, 400.0])
    z = qc.robust_z(values, values)
    assert abs(z.iloc[-1]) > 50 and all(abs(z.iloc[:-1]) < 1.5)
    assert (qc.robust_z(pd.Series([5.0, 5.0]), pd.Series([5.0, 5.0])) == 0).all()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "annotate.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_cli_stats_and_qc(decided) -> None:
    result = _cli("stats", "Harbour", "--by", "annotator", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {r["key"]: r["takes"] for r in data["rows"]} == {"ann": 2, "bob": 1}
    assert data["live"]["review_queue"] == 0
    table = _cli("stats", "--by", "project")
    assert table.returncode == 0 and "Harbour" in table.stdout and "67%" in table.stdout
    assert _cli("stats", "--by", "week").returncode != 0
    missing = _cli("stats", "Nowhere")
    assert missing.returncode == 1 and "No project named" in missing.stderr
    qc_out = _cli("qc", "Harbour")
    assert qc_out.returncode == 0 and "Annotators against their project" in qc_out.stdout


def test_cli_review_decisions(session, decided, blobs) -> None:
    _, _, caption = add_take(session, blobs, decided.images[0], decided.annotators[0])
    session.commit()
    queued = json.loads(_cli("review", "queue", "--json").stdout)
    assert [i["id"] for i in queued["items"]] == [caption.id]
    refused = _cli("review", "approve", str(caption.id), "--as", "ann")
    assert refused.returncode == 1 and "leads and admins" in refused.stderr
    done = json.loads(_cli("review", "approve", str(caption.id), "--as", "lena", "--json").stdout)
    assert done["caption"]["status"] == "approved" and done["review"]["reviewer"] == "lena"
    assert done["review"]["decision"] == "approve"
    again = _cli("review", "reject", str(caption.id), "--reason", "on reflection, no")
    assert again.returncode == 0 and "rejected" in again.stdout


def test_qc_keeps_stored_flags_in_step_with_the_take(session, settings, blobs, decided) -> None:
    """Flags a stage puts in the take's meta, a caption replaced by a less faithful one, and new project
    limits all change the stored flags and their counts in the same transaction as the change."""
    take = session.get(Recording, decided.captions[0].recording_id)
    project = decided.project

    def report(flag: str | None = None) -> dict:
        session.commit()
        return qc.qc_report(session, settings, qc.QcFilter(project_id=project.id, flag=flag))

    take.meta = {**(take.meta or {}), "qc_flags": ["count_mismatch"]}
    flagged = report("count_mismatch")
    assert [t["recording_id"] for t in flagged["takes"]] == [take.id] and flagged["total"] == 1
    assert flagged["takes"][0]["flags"] == ["count_mismatch"]
    assert qc.recordings_with_flag(session, settings, "count_mismatch", project.id) == [take.id]

    take.meta = {**take.meta, "qc_flags": []}
    assert report("count_mismatch")["total"] == 0 and "count_mismatch" not in report()["flag_counts"]

    project.min_seconds = 13.0  # every take of 12.51 s is now too short
    assert report()["flag_counts"]["too_short"] == 3
    project.min_seconds = 1.0
    assert "too_short" not in report()["flag_counts"]

    # A caption unfaithful to its take, then replaced by a reviewer's edit: the edit is the take's
    # current caption, and the take is judged on it.
    recording, _, caption = add_take(
        session, blobs, decided.images[0], decided.annotators[0], faithfulness=0.5
    )
    figures = next(t for t in report("unfaithful")["takes"] if t["recording_id"] == recording.id)
    assert figures["caption_id"] == caption.id
    done = review.decide(session, caption.id, decided.lead, "edit", text="Three red boats on a calm lake.")
    assert done.new_caption is not None
    figures = next(t for t in report()["takes"] if t["recording_id"] == recording.id)
    assert figures["caption_id"] == done.new_caption.id
    assert figures["faithfulness"] == done.new_caption.faithfulness
    assert ("unfaithful" in figures["flags"]) == ((done.new_caption.faithfulness or 1.0) < 0.85)
    with pytest.raises(InvalidInput, match="Unknown QC flag"):
        qc.qc_report(session, settings, qc.QcFilter(flag="nonsense"))
