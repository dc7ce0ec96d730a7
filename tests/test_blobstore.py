"""The blob store contract, run against the local folder store and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from db.blobstore import BlobEntry, Blobs, BlobStore, BlobTooLarge, key_for, open_blobstore
from db.blobstore_s3 import PART_SIZE, S3BlobStore
from tests.support.seaweed import Seaweed, s3_calls


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Blobs:
    if request.param == "local":
        return open_blobstore(tmp_path / "blobs")
    return open_blobstore(request.getfixturevalue("s3_blob_url"))


def chunked(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_put_bytes_is_content_addressed_and_reads_back(store: Blobs) -> None:
    key, sha = store.put_bytes(b"hello voicecap", suffix=".txt")
    assert sha == hashlib.sha256(b"hello voicecap").hexdigest()
    assert key == key_for(sha, ".txt")
    assert store.exists(key) and store.size(key) == 14
    assert store.read_bytes(key) == b"hello voicecap"
    with store.open(key) as handle:
        assert handle.read(5) == b"hello" and handle.read() == b" voicecap"
    # The same bytes again: the same key, one object.
    assert store.put_bytes(b"hello voicecap", suffix=".txt") == (key, sha)
    assert list(store.keys()) == [key]


def test_storing_the_same_bytes_again_renews_the_blob_age(store: Blobs) -> None:
    key, _ = store.put_bytes(b"an orphan, then uploaded again", suffix=".webm")
    before = next(store.entries()).modified
    time.sleep(1.1)  # S3 LastModified has one-second resolution
    store.put_bytes(b"an orphan, then uploaded again", suffix=".webm")
    assert next(store.entries()).modified > before
    assert store.read_bytes(key) == b"an orphan, then uploaded again"


def test_open_reads_a_byte_range(store: Blobs) -> None:
    data = bytes(range(256)) * 40
    key, _ = store.put_bytes(data, suffix=".webm")
    with store.open(key, 100, 199) as handle:
        assert handle.read() == data[100:200]
    with store.open(key, 10_000) as handle:
        assert handle.read() == data[10_000:]


def test_multi_part_stream_round_trips_through_a_local_file(store: Blobs) -> None:
    data = os.urandom(2 * PART_SIZE + 12345)  # three parts on S3
    key, sha = store.put_stream(chunked(data), suffix=".bin")
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.size(key) == len(data)
    with store.local_file(key) as path:
        assert path.read_bytes() == data
    # Nothing but the blob itself is listed: the multipart temporary is gone.
    assert [entry.key for entry in store.entries()] == [key]


def test_size_limit_is_enforced_while_streaming_and_leaves_nothing(store: Blobs) -> None:
    consumed = []

    def endless() -> Iterator[bytes]:
        for number in range(1000):
            consumed.append(number)
            yield os.urandom(1 << 20)

    with pytest.raises(BlobTooLarge):
        store.put_stream(endless(), suffix=".webm", max_bytes=PART_SIZE + (3 << 20))
    assert len(consumed) == 12  # stopped at the first chunk past the limit, the rest never read
    assert list(store.keys()) == []
    assert store.sweep_temporaries(datetime.now(UTC) + timedelta(minutes=1)) == 0


def test_failed_stream_stores_nothing(store: Blobs) -> None:
    def broken() -> Iterator[bytes]:
        yield os.urandom(PART_SIZE + 1)  # one part already sent on S3
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put_stream(broken())
    assert list(store.keys()) == []


def test_spooled_put_gives_a_local_copy_without_reading_the_store_back(store: Blobs, spool_dir: Path) -> None:
    data = os.urandom(PART_SIZE + 12345)  # a multipart upload on S3
    calls = s3_calls(store) if isinstance(store, S3BlobStore) else []
    with store.put_stream_spooled(chunked(data), suffix=".webm", max_bytes=len(data)) as spooled:
        assert spooled.path.read_bytes() == data
        assert spooled.sha256 == hashlib.sha256(data).hexdigest()
        assert spooled.key == key_for(spooled.sha256, ".webm")
        if isinstance(store, BlobStore):
            assert spooled.path == store.path(spooled.key)  # the blob itself, not a second copy
            assert list(spool_dir.iterdir()) == []
    assert "GetObject" not in calls
    assert list(spool_dir.iterdir()) == []  # the temp copy is gone with the block
    assert store.read_bytes(spooled.key) == data  # and the blob stays


@pytest.mark.parametrize("failure", ["too_large", "broken"])
def test_a_failed_spooled_put_leaves_no_blob_and_no_temp_file(
    store: Blobs, spool_dir: Path, failure: str
) -> None:
    def broken() -> Iterator[bytes]:
        yield os.urandom(PART_SIZE + 1)
        raise ConnectionResetError("client went away")

    too_large = failure == "too_large"
    chunks = chunked(os.urandom(PART_SIZE + (3 << 20))) if too_large else broken()
    limit = PART_SIZE + (2 << 20) if too_large else None  # past the first part on S3
    with (
        pytest.raises(BlobTooLarge if too_large else ConnectionResetError),
        store.put_stream_spooled(chunks, max_bytes=limit),
    ):
        pytest.fail("the block must not run")
    assert list(spool_dir.iterdir()) == [] and list(store.keys()) == []


def test_missing_blob_and_bad_keys(store: Blobs) -> None:
    missing = key_for("0" * 64, ".wav")
    assert not store.exists(missing)
    with pytest.raises(FileNotFoundError):
        store.open(missing)
    with pytest.raises(FileNotFoundError), store.local_file(missing):
        pass
    for bad in ("../etc/passwd", "/abs/key", "a/../../b", ".tmp/x"):
        with pytest.raises(ValueError):
            store.exists(bad) if isinstance(store, S3BlobStore) else store.location(bad)


def test_delete_entries_and_location(store: Blobs, tmp_path: Path) -> None:
    source = tmp_path / "take.wav"
    source.write_bytes(b"RIFF" + os.urandom(1000))
    key, _ = store.put_file(source, suffix=".wav")
    other, _ = store.put_bytes(b"thumb", suffix=".jpg")
    entries = {entry.key: entry for entry in store.entries()}
    assert set(entries) == {key, other}
    assert isinstance(entries[key], BlobEntry) and entries[key].size == 1004
    assert abs((datetime.now(UTC) - entries[key].modified).total_seconds()) < 120
    assert store.location(key).endswith(f"/{key}")
    assert store.location(key).startswith("s3://" if isinstance(store, S3BlobStore) else "/")
    store.delete(key)
    store.delete(key)  # deleting twice is fine
    assert not store.exists(key) and list(store.keys()) == [other]


def test_presigned_url_fetches_the_object_without_credentials(s3_blob_url: str) -> None:
    store = open_blobstore(s3_blob_url)
    key, _ = store.put_bytes(b"\xff\xd8 jpeg bytes", suffix=".jpg")
    url = store.presigned_url(key, 60)
    assert url is not None
    assert httpx.get(url).content == b"\xff\xd8 jpeg bytes"
    assert httpx.get(url.replace("Signature=", "Signature=0")).status_code == 403


def test_local_store_has_no_presigned_url_and_interrupted_temporaries_are_swept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    key, _ = store.put_bytes(b"x")
    assert store.presigned_url(key, 60) is None
    leftover = tmp_path / "blobs" / ".tmp" / "tmpabc"
    leftover.write_bytes(b"partial")
    assert list(store.keys()) == [key]
    assert store.sweep_temporaries(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.sweep_temporaries(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert not leftover.exists()


def test_s3_temporaries_of_a_crashed_upload_are_swept(s3_blob_url: str, seaweed: Seaweed) -> None:
    store = open_blobstore(s3_blob_url)
    assert isinstance(store, S3BlobStore)
    # What a process killed between completing the upload and copying it would leave.
    store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/.tmp/dead", Body=b"x" * 10)
    store.client.create_multipart_upload(Bucket=store.bucket, Key=f"{store.prefix}/.tmp/dead2")
    assert list(store.keys()) == []
    assert store.sweep_temporaries(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.sweep_temporaries(datetime.now(UTC) + timedelta(seconds=5)) == 2
    listed = store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])
    assert listed == []


def test_blob_url_chooses_the_store(tmp_path: Path) -> None:
    assert isinstance(open_blobstore(tmp_path / "b"), BlobStore)
    assert isinstance(open_blobstore("s3://bucket/prefix"), S3BlobStore)
    with pytest.raises(ValueError, match="unsupported blob store URL"):
        open_blobstore("gs://bucket")
    with pytest.raises(ValueError, match="s3://BUCKET"):
        S3BlobStore("s3:///nobucket")
