"""Triage on SQLite and PostgreSQL: attention flags (unsure recognition, quiet, mostly silent) and the
"needs attention" sort, intake's quiet flag, batch approval (service and HTTP), and the dashboard's
activity figures (skips by reason, decisions per day per lead, upload to caption)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from annotate.errors import InvalidInput
from annotate.services import activity, attention, batch_review, qc, review
from annotate.services.intake import AudioMeasures, intake_flags
from db.models import Assignment, AssignmentStatus, Review, utcnow
from tests.support.review_seed import BOATS_WORDS, IMAGES, add_image, add_take, seed
from tests.support.server import login


def add_misheard_take(session, blobs, data):
    """The issue's take: words heard at probability 0.03-0.13, 54% silence, about -46 dBFS."""
    picture = sorted(IMAGES.glob("*.jpg"))[3]  # seed() used the first three
    image = add_image(session, blobs, data.project, picture)
    recording, transcript, caption = add_take(session, blobs, image, data.annotators[0], silence=0.54)
    recording.loudness_dbfs = -46.0
    transcript.words = [
        {**word, "probability": 0.03 + 0.1 * (index % 2)} if index % 3 else word
        for index, word in enumerate(BOATS_WORDS)
    ]
    session.commit()
    return caption


def test_attention_flags_and_sort(session, blobs, settings) -> None:
    data = seed(session, blobs)
    bad = add_misheard_take(session, blobs, data)
    clean, flagged = data.captions[0], data.captions[1]

    found = attention.caption_attention(session, settings, bad.id)
    assert found["flags"] == ["unsure_recognition", "quiet", "mostly_silent"]
    assert found["unsure_share"] > 0.5 and found["mean_probability"] < 0.5
    assert found["unsure_below"] == settings.unsure_word_probability
    calm = attention.caption_attention(session, settings, clean.id)
    assert calm["flags"] == []  # 3 of 35 words unsure, mean 0.85: a normal take
    assert calm["score"] < found["score"]

    queue = attention.attention_queue(session, settings, review.QueueFilter(limit=2))
    assert [item["id"] for item in queue["items"]] == [bad.id, flagged.id]
    assert queue["total"] == 4 and queue["next_offset"] == 2
    assert queue["items"][0]["attention"]["flags"] == found["flags"]
    rest = attention.attention_queue(session, settings, review.QueueFilter(limit=2), offset=2)
    assert [item["id"] for item in rest["items"]] == sorted(c.id for c in (clean, data.captions[2]))
    assert rest["next_offset"] is None

    report = qc.qc_report(session, settings, qc.QcFilter(flag="quiet"))
    assert [take["recording_id"] for take in report["takes"]] == [bad.recording_id]
    assert "mostly_silent" in report["takes"][0]["flags"]


def test_word_confidence_ignores_blank_and_missing_probabilities() -> None:
    words = [
        {"word": " a", "probability": 0.2},
        {"word": " ", "probability": 0.01},
        {"word": " b"},
        {"word": " c", "probability": 0.9},
    ]
    confidence = attention.word_confidence(words, 0.5)
    assert (confidence.words, confidence.unsure) == (2, 1)
    assert confidence.mean_probability == pytest.approx(0.55)
    assert attention.word_confidence([], 0.5).unsure_share == 0.0


def test_intake_flags_quiet_and_mostly_silent_takes(settings) -> None:
    normal = AudioMeasures(10.0, -22.0, -3.0, 0.2)
    assert intake_flags(normal, settings) == []
    assert intake_flags(AudioMeasures(10.0, -45.0, -30.0, 0.54), settings) == ["quiet", "mostly_silent"]


def test_approve_many_skips_what_was_decided_meanwhile(session, blobs) -> None:
    data = seed(session, blobs)
    first, second, third = (c.id for c in data.captions)
    review.decide(session, first, data.lead, "approve")
    session.commit()
    result = batch_review.approve_many(session, data.lead, [first, second, third, second])
    session.commit()
    assert result == {"approved": [second, third], "skipped": [{"id": first, "reason": "already approved"}]}
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Review)) == 3
    with pytest.raises(InvalidInput):
        batch_review.approve_many(session, data.lead, [])
    with pytest.raises(InvalidInput):
        batch_review.approve_many(session, data.lead, list(range(1, batch_review.MAX_BATCH + 2)))


def test_batch_approve_and_attention_over_http(server, session, blobs) -> None:
    data = seed(session, blobs)
    bad = add_misheard_take(session, blobs, data)
    lead = login(server, "lena", "correct-horse")
    queue = lead.get("/api/review/attention-queue", params={"limit": 10}).json()
    assert queue["items"][0]["id"] == bad.id
    assert lead.get(f"/api/review/captions/{bad.id}/attention").json()["flags"][0] == "unsure_recognition"
    assert lead.post("/api/review/batch-approve", json={"caption_ids": []}).status_code == 422
    ids = [c.id for c in data.captions]
    answer = lead.post("/api/review/batch-approve", json={"caption_ids": ids})
    assert answer.status_code == 200, answer.text
    assert answer.json()["approved"] == ids
    annotator = login(server, "ann", "correct-horse")
    assert annotator.post("/api/review/batch-approve", json={"caption_ids": [bad.id]}).status_code == 403
    assert lead.get("/api/review/attention-queue").json()["total"] == 1


def test_activity_counts_skips_reviewers_and_waits(session, blobs) -> None:
    data = seed(session, blobs)
    for image, reason in zip(data.images, ("image_broken", "other: blurry", "other"), strict=True):
        session.add(
            Assignment(
                image_id=image.id,
                user_id=data.annotators[1].id,
                project_id=data.project.id,
                status=AssignmentStatus.skipped,
                lease_until=utcnow(),
                skip_reason=reason,
            )
        )
    review.decide(session, data.captions[0].id, data.lead, "approve")
    review.decide(session, data.captions[1].id, data.lead, "reject", reason="pirates")
    session.commit()

    figures = activity.activity(session, data.project.id)
    assert figures["skips"]["total"] == 3
    assert [(r["reason"], r["count"]) for r in figures["skips"]["reasons"]] == [
        ("other", 2),
        ("image_broken", 1),
    ]
    today = utcnow().strftime("%Y-%m-%d")
    assert figures["reviewers"] == [
        {"day": today, "reviewer": "lena", "decisions": 2, "approved": 1, "rejected": 1}
    ]
    waits = figures["upload_to_caption"]
    assert waits["count"] == 3 and waits["median_seconds"] == pytest.approx(30.0, abs=0.5)
    assert activity.activity(session, data.project.id + 99)["skips"]["total"] == 0
    assert timedelta(seconds=waits["max_seconds"]) < timedelta(minutes=1)
