"""The review service on both databases: queue filters, each decision, history and conflicts."""

from __future__ import annotations

from itertools import pairwise

import pytest
from sqlalchemy import select

from annotate.errors import Conflict, InvalidInput
from annotate.services import review
from db.models import Caption, Image, Recording, RecordingStatus, Review, Transcript
from tests.support.review_seed import BOATS_CAPTION, BOATS_WORDS, seed


@pytest.fixture
def data(session, blobs):
    return seed(session, blobs)


def _ids(result: dict) -> list[int]:
    return [item["id"] for item in result["items"]]


def test_queue_filters_by_project_annotator_flag_and_state(session, data) -> None:
    every = [c.id for c in data.captions]
    assert _ids(review.list_queue(session, review.QueueFilter())) == every
    ann = data.annotators[0]
    by_ann = review.list_queue(session, review.QueueFilter(annotator_id=ann.id))
    assert _ids(by_ann) == [every[0], every[2]] and by_ann["total"] == 2
    assert {i["annotator"] for i in by_ann["items"]} == {"ann"}
    assert _ids(review.list_queue(session, review.QueueFilter(flag="flagged"))) == [every[1]]
    assert _ids(review.list_queue(session, review.QueueFilter(flag="unsupported_content"))) == [every[1]]
    assert _ids(review.list_queue(session, review.QueueFilter(flag="unflagged"))) == [every[0], every[2]]
    # An underscore in a flag name is literal, not a LIKE wildcard.
    assert _ids(review.list_queue(session, review.QueueFilter(flag="unsupported-content"))) == []
    assert _ids(review.list_queue(session, review.QueueFilter(project_id=data.project.id + 99))) == []
    assert _ids(review.list_queue(session, review.QueueFilter(status="approved"))) == []
    page = review.list_queue(session, review.QueueFilter(limit=2))
    assert _ids(page) == every[:2] and page["next_after"] == every[1] and page["total"] == 3
    rest = review.list_queue(session, review.QueueFilter(limit=2, after_id=page["next_after"]))
    assert _ids(rest) == every[2:] and rest["next_after"] is None
    with pytest.raises(InvalidInput):
        review.list_queue(session, review.QueueFilter(status="bogus"))


def test_transcript_words_come_from_the_words_column_without_blanks() -> None:
    transcript = Transcript(
        segments=[{"start": 0.0, "end": 1.0, "text": "red boat"}],
        words=[
            {"start": 0, "end": 0.4, "word": " red", "probability": 0.9},
            {"start": 0.4, "end": 0.5, "word": " ", "probability": 0.1},
            {"start": 0.5, "end": 1, "word": " boat", "probability": 0.8},
        ],
    )
    assert review.transcript_words(transcript) == [
        {"start": 0.0, "end": 0.4, "word": " red", "probability": 0.9},
        {"start": 0.5, "end": 1.0, "word": " boat", "probability": 0.8},
    ]


def test_detail_has_word_timings_recording_and_history(session, data) -> None:
    detail = review.caption_detail(session, data.captions[0].id)
    words = detail["transcript"]["words"]
    assert len(words) == 35 and words[0]["word"].strip() == "In" and words[-1]["end"] == 11.78
    assert all(a["start"] <= b["start"] for a, b in pairwise(words))
    assert detail["recording"]["annotator"] == "ann"
    assert detail["recording"]["audio_url"] == f"/api/recordings/{data.recordings[0].id}/audio"
    assert detail["image"]["project"] == "Harbour"
    assert [h["id"] for h in detail["history"]] == [data.captions[0].id]


def test_approve_stores_a_review_with_who(session, data) -> None:
    caption = data.captions[0]
    result = review.decide(session, caption.id, data.lead, "approve")
    session.commit()
    assert caption.status == "approved"
    stored = session.scalars(select(Review)).one()
    assert (stored.caption_id, stored.reviewer_id, stored.decision.value) == (
        caption.id,
        data.lead.id,
        "approve",
    )
    assert stored.created_at is not None and result.review.id == stored.id
    assert review.list_queue(session, review.QueueFilter())["total"] == 2


def test_edit_adds_an_approved_child_and_keeps_the_original(session, data) -> None:
    parent = data.captions[1]
    new_text = BOATS_CAPTION.replace("Three red boats", "Three wooden red boats")
    result = review.decide(session, parent.id, data.lead, "edit", text=new_text)
    session.commit()
    child = result.new_caption
    assert child is not None and child.parent_id == parent.id and child.kind.value == "edited"
    assert (child.status, child.text, child.created_by) == ("approved", new_text, data.lead.id)
    # Measured against the transcript like any caption: "wooden" was never said.
    assert "wooden" not in data.transcripts[1].text and child.faithfulness is not None
    assert child.faithfulness < 1.0 and "wooden" in child.unsupported_words
    assert parent.status == "superseded" and parent.text.startswith(BOATS_CAPTION)
    history = review.caption_detail(session, child.id)["history"]
    assert [h["id"] for h in history] == [parent.id, child.id]
    assert history[0]["reviews"][0]["decision"] == "edit"
    # The same edit submitted twice (a double click) stores one child; the parent is now superseded.
    with pytest.raises(Conflict, match="superseded by caption"):
        review.decide(session, parent.id, data.lead, "edit", text=new_text)
    with pytest.raises(InvalidInput, match="unchanged"):
        review.decide(session, child.id, data.lead, "edit", text=new_text)


def test_reject_needs_a_reason_and_frees_the_image(session, data) -> None:
    caption = data.captions[2]
    with pytest.raises(InvalidInput, match="reason"):
        review.decide(session, caption.id, data.lead, "reject", reason="  ")
    review.decide(session, caption.id, data.lead, "reject", reason="Describes another image")
    session.commit()
    recording = session.get(Recording, caption.recording_id)
    image = session.get(Image, caption.image_id)
    assert caption.status == "rejected" and recording.status is RecordingStatus.rejected
    assert image.done_count == 0
    assert session.scalars(select(Review)).one().reason == "Describes another image"
    # A lead who changes their mind approves it again: the take counts again.
    review.decide(session, caption.id, data.lead, "approve")
    session.commit()
    assert recording.status is RecordingStatus.captioned and image.done_count == 1


@pytest.mark.parametrize(("decision", "state"), [("retranscribe", "uploaded"), ("reclean", "transcribed")])
def test_send_back_bumps_the_revision_and_requeues(session, data, decision, state) -> None:
    caption = data.captions[0]
    recording = session.get(Recording, caption.recording_id)
    recording.attempts = 2
    session.commit()
    review.decide(session, caption.id, data.lead, decision, reason="mumbled")
    session.commit()
    assert recording.status.value == state and recording.revision == 2 and recording.attempts == 0
    assert caption.status == "superseded"
    revisions = session.scalars(
        select(Transcript.revision)
        .where(Transcript.recording_id == recording.id)
        .order_by(Transcript.revision)
    ).all()
    # Re-cleaning works from a copy of the transcript under the new revision (the clean stage reads the
    # recording's current revision); re-transcribing waits for the transcribe stage to write it.
    assert revisions == ([1, 2] if decision == "reclean" else [1])
    assert session.get(Caption, caption.id) is not None  # kept as history
    # Still in the pipeline: sending it back again, or deciding on the old caption, is refused.
    with pytest.raises(Conflict):
        review.decide(session, caption.id, data.lead, "approve")


def test_external_id_makes_a_decision_idempotent(session, data) -> None:
    caption = data.captions[0]
    first = review.decide(session, caption.id, None, "approve", source="labelstudio", external_id="ls-7")
    again = review.decide(session, caption.id, None, "approve", source="labelstudio", external_id="ls-7")
    session.commit()
    assert first.review.id == again.review.id
    assert len(session.scalars(select(Review)).all()) == 1


def test_choices_list_what_the_filters_offer(session, data) -> None:
    choices = review.queue_choices(session)
    assert [a["name"] for a in choices["annotators"]] == ["ann", "bob"]
    assert choices["flags"] == ["unsupported_content"]
    assert choices["projects"] == [{"id": data.project.id, "name": "Harbour"}]


def test_a_recleaned_take_gets_a_new_caption_from_the_real_clean_stage(session, data) -> None:
    import os
    import subprocess
    import sys

    caption = data.captions[0]
    review.decide(session, caption.id, data.lead, "reclean", reason="try the new prompt")
    session.commit()
    done = subprocess.run(
        [sys.executable, "-m", "annotate.cli.main", "clean", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "VOICECAP_CLEANER": "rules"},
    )
    assert done.returncode == 0, done.stderr
    session.expire_all()
    recording = session.get(Recording, caption.recording_id)
    assert recording.status is RecordingStatus.captioned and recording.revision == 2
    fresh = session.scalars(
        select(Caption).where(Caption.recording_id == recording.id, Caption.status == "pending")
    ).one()
    transcript = session.get(Transcript, fresh.transcript_id)
    assert transcript.revision == 2 and fresh.id != caption.id and fresh.kind.value == "single"
    assert transcript.words == BOATS_WORDS  # the copy keeps the word timings for the player
    assert session.get(Caption, caption.id).status == "superseded"
    assert fresh.id in _ids(review.list_queue(session, review.QueueFilter()))
