"""`voicecap status`, `retry --failed` and `clean` through the real CLI, on SQLite and PostgreSQL.

Rows are made directly in each state; the clean test talks to a real local OpenAI-compatible server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.blobstore import BlobStore
from db.models import Caption, Recording, RecordingStatus, utcnow
from tests.support import factories
from tests.support.cli import run_cli, run_json
from tests.support.fake_openai import FakeOpenAI
from tests.support.worker_data import Fixture, add_recording, make_fixture, speech_clips


def transcribed(
    session: Session, blobs: BlobStore, fixture: Fixture, text: str, seconds: float = 12.0
) -> int:
    recording = add_recording(session, blobs, fixture, b"RIFF", status=RecordingStatus.transcribed)
    factories.add_transcript(
        session,
        recording,
        text,
        engine_version="test",
        audio_seconds=seconds,
        processing_seconds=seconds / 10,
    )
    session.commit()
    return recording.id


@pytest.fixture
def pipeline(session: Session, blobs: BlobStore) -> dict[str, int]:
    """One recording in each interesting state, plus one in another project."""
    fixture = make_fixture(session, "status-test")
    now = utcnow()
    old = add_recording(session, blobs, fixture, b"RIFF")
    old.updated_at = now - timedelta(hours=2)  # waiting for two hours
    fresh = add_recording(session, blobs, fixture, b"RIFF")
    held = add_recording(
        session,
        blobs,
        fixture,
        b"RIFF",
        status=RecordingStatus.transcribing,
        claimed_by="box-1:42",
        lease_until=now + timedelta(minutes=5),
        attempts=1,
    )
    failed = add_recording(
        session,
        blobs,
        fixture,
        b"RIFF",
        status=RecordingStatus.failed,
        attempts=3,
        last_error="transcribe attempt 3: FileNotFoundError: audio blob is missing",
    )
    session.commit()
    done = transcribed(session, blobs, fixture, "a red boat on a lake")
    other = make_fixture(session, "other-project")
    add_recording(session, blobs, other, b"RIFF")
    return {"old": old.id, "fresh": fresh.id, "held": held.id, "failed": failed.id, "done": done}


def test_status_json_reports_states_throughput_oldest_workers_and_failures(settings, pipeline) -> None:
    status = run_json("status")

    assert status["recordings"] == {
        "uploaded": 3,
        "transcribing": 1,
        "transcribed": 1,
        "cleaning": 0,
        "captioned": 0,
        "failed": 1,
        "rejected": 0,
    }
    last_hour = status["throughput"]["last_hour"]
    assert last_hour["transcribed"] == 1 and last_hour["audio_hours"] == pytest.approx(12 / 3600, abs=1e-4)
    assert last_hour["engine_real_time_factor"] == pytest.approx(0.1)
    oldest = status["oldest_waiting"]["transcribe"]
    assert oldest["recording_id"] == pipeline["old"] and 7100 < oldest["age_seconds"] < 7300
    assert status["oldest_waiting"]["clean"]["recording_id"] == pipeline["done"]
    assert status["workers"] == [{"worker": "box-1:42", "status": "transcribing", "held": 1}]
    assert status["tokens"] == {"prompt": 0, "completion": 0, "cost_estimate": None}
    [failure] = status["failures"]
    assert failure["recording_id"] == pipeline["failed"] and "FileNotFoundError" in failure["error"]

    scoped = run_json("status", "--project", "other-project")
    assert scoped["recordings"]["uploaded"] == 1 and sum(scoped["recordings"].values()) == 1
    assert scoped["failures"] == [] and scoped["workers"] == []

    text = run_cli("status").stdout
    assert "Recent failures" in text and "box-1:42" in text and "2.0 h" in text


def test_retry_failed_requeues_into_the_stage_that_failed(settings, pipeline, session: Session) -> None:
    refused = run_cli("retry", check=False)
    assert refused.returncode != 0 and "--failed" in refused.stderr

    assert run_json("retry", "--failed", "--stage", "clean") == {"requeued": 0}
    assert run_json("retry", "--failed") == {"requeued": 1}

    row = session.get(Recording, pipeline["failed"])
    session.refresh(row)
    assert row.status == RecordingStatus.uploaded and row.attempts == 0
    assert run_json("status")["recordings"]["failed"] == 0


def test_clean_with_an_llm_records_tokens_and_status_sums_them(
    settings, session: Session, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = make_fixture(session)
    ids = [transcribed(session, blobs, fixture, clip.text) for clip in speech_clips()[:3]]
    monkeypatch.setenv("VOICECAP_CLEANER", "llm")
    monkeypatch.setenv("VOICECAP_LLM_PRICE_PER_MILLION_INPUT", "2.5")
    monkeypatch.setenv("VOICECAP_LLM_PRICE_PER_MILLION_OUTPUT", "10")

    with FakeOpenAI() as fake:
        monkeypatch.setenv("VOICECAP_LLM_BASE_URL", fake.base_url)
        totals = run_json("clean", "--batch-size", "2")["clean"]
        requests = fake.stats.requests

    # Three single captions, then the idle sweep merges the image's three transcripts into one.
    assert totals["done"] == 3 and totals["failed"] == 0 and totals["merged"] == 1 and requests == 4
    session.expire_all()
    assert [session.get(Recording, rid).status for rid in ids] == [RecordingStatus.captioned] * 3
    prompt, completion = session.execute(
        select(func.sum(Caption.prompt_tokens), func.sum(Caption.completion_tokens))
    ).one()
    assert prompt > 0 and completion > 0
    assert session.scalar(select(func.count()).where(Caption.kind == "merged")) == 1
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (prompt, completion)
    tokens = run_json("status")["tokens"]
    assert (tokens["prompt"], tokens["completion"]) == (prompt, completion)
    assert tokens["cost_estimate"] == pytest.approx(prompt * 2.5e-6 + completion * 10e-6, abs=1e-4)
    last_hour = run_json("status")["throughput"]["last_hour"]
    assert (last_hour["captioned"], last_hour["merged"]) == (3, 1)
