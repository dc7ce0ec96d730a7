"""Audio intake on an S3 blob store (SeaweedFS): the take is decoded from a local copy made while it
streams into the bucket, never read back from it; a refused or broken upload stores nothing in the
bucket and leaves no temp file. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.requests import ClientDisconnect

from annotate.services.assignments import next_assignment
from annotate.services.intake import IntakeRejected
from db.blobstore import Blobs, open_blobstore
from db.blobstore_s3 import S3BlobStore
from db.models import Recording
from tests.support.seaweed import s3_calls
from tests.test_assignments import add_images, make_project
from tests.test_intake import encode, speech, submit
from transcribe.audio import decode_audio

UUID = "99999999-9999-4999-8999-999999999999"


@pytest.fixture
def blobs(s3_blob_url: str) -> Blobs:
    return open_blobstore(s3_blob_url)


@pytest.fixture
def task(session, settings, blobs, make_user):
    """A project (2-20 s), two images in the bucket, an annotator holding a lease on the first."""
    project = make_project(session)
    images = add_images(session, blobs, project, 2)
    user, _ = make_user("ann")
    assignment = next_assignment(session, settings, user=user, project=project)
    session.commit()
    return {"project": project, "image": images[0], "user": user, "assignment": assignment}


def bucket_objects(blobs: Blobs) -> list[str]:
    """Every object under the store's prefix, temporaries of unfinished uploads included."""
    assert isinstance(blobs, S3BlobStore)
    listed = blobs.client.list_objects_v2(Bucket=blobs.bucket, Prefix=f"{blobs.prefix}/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_an_accepted_take_is_decoded_without_reading_the_bucket(
    session, settings, blobs, task, spool_dir: Path
) -> None:
    data = encode(speech(6.0), "webm")
    calls = s3_calls(blobs)
    recording, created = submit(session, blobs, settings, task, data, "audio/webm", UUID)
    assert created and abs(recording.duration_seconds - 6.0) < 0.1
    assert "GetObject" not in calls, calls  # decoded from the spooled copy, no read of what was just written
    assert calls.count("PutObject") == 2, calls  # the original and its WAV
    assert list(spool_dir.iterdir()) == []
    assert blobs.read_bytes(recording.original_key) == data
    with blobs.local_file(recording.wav_key) as wav:
        assert abs(len(decode_audio(wav)) / 16000 - 6.0) < 0.1


def _endless() -> Iterator[bytes]:
    yield from itertools.repeat(b"\x1a" * 65536)


def _disconnecting(data: bytes) -> Iterator[bytes]:
    yield data[: len(data) // 2]
    raise ClientDisconnect()  # what the API's request stream raises when the client goes away


@pytest.mark.parametrize("failure", ["audio_undecodable", "audio_too_short", "audio_too_large", "disconnect"])
def test_a_refused_or_broken_upload_stores_nothing_and_leaves_no_temp_file(
    session, settings, blobs, task, spool_dir: Path, failure: str
) -> None:
    before = bucket_objects(blobs)
    settings.max_upload_mb = 0.25
    chunks: object = {
        "audio_undecodable": [b"this is not audio at all " * 200],
        "audio_too_short": [encode(speech(1.0), "webm")],
        "audio_too_large": _endless(),
        "disconnect": _disconnecting(encode(speech(6.0), "webm")),
    }[failure]
    calls = s3_calls(blobs)
    with pytest.raises(ClientDisconnect if failure == "disconnect" else IntakeRejected) as refused:
        submit(session, blobs, settings, task, chunks, "audio/webm", UUID)
    session.rollback()
    if isinstance(refused.value, IntakeRejected):
        assert refused.value.code == failure
    assert "GetObject" not in calls, calls
    assert bucket_objects(blobs) == before  # nothing new in the bucket, not even a temporary
    assert list(spool_dir.iterdir()) == []
    assert session.scalar(select(func.count()).select_from(Recording)) == 0
