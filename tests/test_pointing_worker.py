"""Pointing alignment end to end: the real worker (faster-whisper tiny.en) transcribes espeak-ng saying
"In this photo there are three garden chairs on the pier, and one boat." for point-mode takes whose
points are timed at the spoken words, and stores the alignment and the count_mismatch flag, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annotate.services import attention, point_sets, qc, review
from annotate.services.review import QueueFilter
from db.blobstore import BlobStore
from db.models import (
    Caption,
    Image,
    PointingAlignment,
    Project,
    ProjectMode,
    Recording,
    RecordingStatus,
    ReviewDecision,
    Role,
    Transcript,
)
from db.settings import Settings
from tests.support import factories
from tests.support.worker_data import SPEECH, add_recording, make_fixture
from transcribe.audio import decode_audio
from transcribe.engines import TranscriptionEngine, load_engine
from transcribe.stages.pointing import align_recording
from transcribe.stages.transcribe import TranscribeProcessor
from transcribe.worker import Worker, WorkerConfig

pytestmark = pytest.mark.slow

LABELS = ["garden chair", "boat"]
HZ = 30  # trace samples a second
GAP = (3.0, 3.4)  # the pointer is off the image


@pytest.fixture(scope="module")
def whisper() -> TranscriptionEngine:
    return load_engine(
        Settings(), engine="faster-whisper", model="tiny.en", device="cpu", compute_type="int8"
    )


@pytest.fixture(scope="module")
def clip(whisper):
    """The fixture's audio and the words tiny.en hears in it (the worker will hear the same)."""
    meta = json.loads((SPEECH / "pointing.json").read_text())
    audio = decode_audio(SPEECH / meta["file"])
    heard = whisper.transcribe(audio, "en").words_json()
    assert " ".join(w["word"] for w in heard) == meta["text"], "tiny.en no longer hears the fixture"
    return audio, heard


@pytest.fixture
def factory(engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def index_of(heard: list[dict[str, Any]], word: str) -> int:
    return [w["word"].strip(" ,.").lower() for w in heard].index(word)


def middle(heard: list[dict[str, Any]], word: str) -> float:
    found = heard[index_of(heard, word)]
    return round((found["start"] + found["end"]) / 2, 3)


def trace_for(seconds: float) -> list[list[list[float]]]:
    """Two strokes at 30 Hz with the pointer off the image from 3.0 s to 3.4 s (while "the" is said)."""
    samples = [
        [0.2 + 0.5 * t / seconds, 0.4, round(t, 4)] for t in (k / HZ for k in range(int(seconds * HZ)))
    ]
    return [[s for s in samples if s[2] < GAP[0]], [s for s in samples if s[2] >= GAP[1]]]


def points(heard: list[dict[str, Any]], chairs: int) -> list[dict[str, Any]]:
    chair_time = middle(heard, "chairs")
    return [
        *({"x": 0.1 * (k + 1), "y": 0.5, "t": chair_time, "label": "garden chair"} for k in range(chairs)),
        {"x": 0.8, "y": 0.3, "t": middle(heard, "boat"), "label": "boat"},
    ]


def pointing_take(session: Session, blobs: BlobStore, fixture, audio, heard, chairs: int) -> Recording:
    recording = add_recording(session, blobs, fixture, audio)
    factories.add_trace(session, recording, trace_for(len(audio) / 16000))
    factories.add_point_set(session, recording, points(heard, chairs))
    session.commit()
    return recording


def alignment_of(session: Session, recording_id: int) -> PointingAlignment:
    """The alignment of the take's newest transcript."""
    session.commit()  # a fresh read: the worker and realignments wrote in other sessions
    session.expire_all()
    return session.scalars(
        select(PointingAlignment)
        .join(Transcript, Transcript.id == PointingAlignment.transcript_id)
        .where(Transcript.recording_id == recording_id)
        .order_by(Transcript.revision.desc())
        .limit(1)
    ).one()


def flags_of(session: Session, recording_id: int) -> list[str]:
    session.commit()  # a fresh read: the worker and realignments wrote in other sessions
    session.expire_all()
    return list(session.get_one(Recording, recording_id).meta.get("qc_flags", []))


def realign_with(factory, recording_id: int, heard, chairs: int, version: int, settings: Settings) -> None:
    """A reviewer's correction: a new point set version, then the alignment again."""
    with factory() as session, session.begin():
        recording = session.get_one(Recording, recording_id)
        factories.add_point_set(session, recording, points(heard, chairs), version=version)
        assert align_recording(session, recording_id, settings) is not None


def test_worker_aligns_words_points_and_counts(
    session: Session, blobs: BlobStore, factory, whisper, clip, settings: Settings
) -> None:
    audio, heard = clip
    fixture = make_fixture(session, "pointing")
    project = session.get_one(Project, fixture.project_id)
    project.mode, project.labels = ProjectMode.point, LABELS
    session.commit()
    agree = pointing_take(session, blobs, fixture, audio, heard, chairs=3)
    short = pointing_take(session, blobs, fixture, audio, heard, chairs=2)
    plain = make_fixture(session, "describe")
    described = add_recording(session, blobs, plain, audio)
    config = WorkerConfig(worker_id="pointing", batch_size=3, lease_seconds=60, backoff_seconds=0)

    totals = Worker(factory, [TranscribeProcessor(whisper, blobs, settings=settings)], config).run(drain=True)

    assert totals["transcribe"].done == 3
    chairs, boat = index_of(heard, "chairs"), index_of(heard, "boat")
    garden = chairs - 1
    aligned = alignment_of(session, agree.id)
    # Every word gets the trace samples timed within it; words said while the pointer was off get None.
    times = [s[2] for stroke in trace_for(len(audio) / 16000) for s in stroke]
    for word, got in zip(heard, aligned.words, strict=True):
        inside = [k for k, t in enumerate(times) if word["start"] <= t <= word["end"]]
        assert got == ([inside[0], inside[-1]] if inside else None), word
    in_gap = [k for k, w in enumerate(heard) if GAP[0] < w["start"] and w["end"] < GAP[1]]
    assert in_gap and all(aligned.words[k] is None for k in in_gap)
    assert aligned.words[chairs] is not None
    assert [
        (link["phrase"], link["word_start"], link["word_end"], link["distance_s"]) for link in aligned.links
    ] == [("garden chairs", garden, chairs, 0.0)] * 3 + [("boat", boat, boat, 0.0)]
    assert [(c["label"], c["spoken"], c["pointed"], c["agrees"]) for c in aligned.counts] == [
        ("garden chair", 3, 3, True),
        ("boat", 1, 1, True),
    ]
    assert aligned.count_mismatch is False and "count_mismatch" not in flags_of(session, agree.id)

    missing = alignment_of(session, short.id)
    assert [(c["label"], c["spoken"], c["pointed"], c["agrees"]) for c in missing.counts] == [
        ("garden chair", 3, 2, False),
        ("boat", 1, 1, True),
    ]
    assert missing.count_mismatch is True and flags_of(session, short.id) == ["count_mismatch"]
    # A describe take is transcribed as before, with no alignment.
    assert session.get_one(Recording, described.id).status == RecordingStatus.transcribed
    assert session.scalar(select(func.count(PointingAlignment.id))) == 2

    # QC's filter and the "needs attention" order see the flag.
    assert qc.recordings_with_flag(session, settings, "count_mismatch") == [short.id]
    image = session.get_one(Image, fixture.image_id)
    for recording in (agree, short):
        transcript = session.scalars(select(Transcript).where(Transcript.recording_id == recording.id)).one()
        factories.add_caption(session, image, transcript=transcript)
    session.commit()
    queue = attention.attention_queue(session, settings, QueueFilter(project_id=fixture.project_id))
    assert [item["recording_id"] for item in queue["items"]] == [short.id, agree.id]
    assert [item["attention"]["flags"] for item in queue["items"]] == [["count_mismatch"], []]

    # Both ways on realignment: the corrected take loses the flag, the other gains it; one row each.
    # The short take is corrected through the review service: a lead adds the missing chair (no time).
    with factory() as write, write.begin():
        lead = factories.add_user(write, "lead", Role.lead)
        added = {"x": 0.35, "y": 0.5, "t": None, "label": "garden chair"}
        fix = point_sets.Correction(base_version=1, points=[*points(heard, 2), added], absent_labels=[])
        point_sets.correct_points(write, settings, lead, short.id, fix)
    realign_with(factory, agree.id, heard, chairs=2, version=2, settings=settings)
    corrected = alignment_of(session, short.id)
    assert corrected.links[-1] == {
        "point": 3,
        "phrase": "garden chairs",
        "word_start": garden,
        "word_end": chairs,
        "distance_s": None,
    }
    assert corrected.count_mismatch is False and flags_of(session, short.id) == []
    assert alignment_of(session, agree.id).count_mismatch is True
    assert flags_of(session, agree.id) == ["count_mismatch"]
    assert session.scalar(select(func.count(PointingAlignment.id))) == 2
    assert qc.recordings_with_flag(session, settings, "count_mismatch") == [agree.id]

    # Sent back for re-cleaning, the take's copied transcript is aligned too, so QC keeps the flag.
    with factory() as write, write.begin():
        write.get_one(Recording, agree.id).status = RecordingStatus.captioned  # as the clean stage leaves it
        caption_id = write.scalars(select(Caption.id).where(Caption.recording_id == agree.id)).one()
        review.decide(write, caption_id, None, ReviewDecision.reclean)
    session.commit()
    assert session.scalar(select(func.count(PointingAlignment.id))) == 3
    assert alignment_of(session, agree.id).count_mismatch is True
    assert qc.recordings_with_flag(session, settings, "count_mismatch") == [agree.id]
