"""`voicecap blobs migrate` (local folder -> S3, resumable, verified by hash) and `voicecap blobs check`
(missing and orphaned blobs, sweeping orphans older than a grace period), through the real CLI."""

from __future__ import annotations

import os

import pytest
from sqlalchemy.orm import Session

from db.blobstore import BlobStore, open_blobstore
from db.settings import Settings
from tests.support.cli import run_cli, run_json
from tests.support.factories import add_image, add_project, add_recording, add_user


def seed(session: Session, blobs: BlobStore) -> set[str]:
    project = add_project(session, "birds")
    user = add_user(session, "ann1")
    first = add_image(session, project, blobs=blobs, data=b"\xff\xd8 image one")
    second = add_image(session, project, blobs=blobs, data=b"\xff\xd8 image two")
    take = add_recording(session, first, user, blobs=blobs, audio=b"RIFF take one")
    session.commit()
    return {first.blob_key, second.blob_key, take.original_key}


def test_migrate_copies_resumes_and_refuses_corrupt_blobs(
    settings: Settings, session: Session, blobs: BlobStore, s3_blob_url: str
) -> None:
    referenced = seed(session, blobs)
    orphan, _ = blobs.put_bytes(b"left by a crash", suffix=".webm")
    target = open_blobstore(s3_blob_url)

    first = run_json("blobs", "migrate", "--to", s3_blob_url)
    assert (first["copied"], first["skipped"], first["corrupt"]) == (4, 0, [])
    assert set(target.keys()) == referenced | {orphan}
    for key in referenced:
        assert target.read_bytes(key) == blobs.read_bytes(key)

    # An interrupted run is resumed: what is there is skipped, what is not is copied.
    target.delete(orphan)
    again = run_json("blobs", "migrate", "--to", s3_blob_url)
    assert (again["copied"], again["skipped"]) == (1, 3)

    # A source blob whose bytes no longer match its key is reported, not copied under its name.
    damaged = sorted(referenced)[0]
    target.delete(damaged)
    blobs.path(damaged).write_bytes(b"bit rot")
    result = run_cli("blobs", "migrate", "--to", s3_blob_url, "--json", check=False)
    assert result.returncode == 1
    assert '"corrupt": ["' + damaged + '"]' in result.stdout
    assert set(target.keys()) == (referenced | {orphan}) - {damaged}


def test_migrate_refuses_a_bad_target(settings: Settings, blobs: BlobStore) -> None:
    same = run_cli("blobs", "migrate", "--to", str(settings.blob_dir), check=False)
    assert same.returncode == 1 and "same store" in same.stderr
    bad = run_cli("blobs", "migrate", "--to", "gs://bucket/x", check=False)
    assert bad.returncode == 1 and "unsupported blob store URL" in bad.stderr


def test_migrate_names_a_bucket_that_does_not_exist(settings: Settings, s3_blob_url: str) -> None:
    result = run_cli("blobs", "migrate", "--to", "s3://no-such-bucket-voicecap/x", check=False)
    assert result.returncode == 1
    assert "object store refused" in result.stderr and "NoSuchBucket" in result.stderr


@pytest.mark.parametrize("store", ["local", "s3"])
def test_check_finds_missing_and_sweeps_only_old_orphans(
    settings: Settings,
    session: Session,
    store: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if store == "s3":
        url = request.getfixturevalue("s3_blob_url")
        monkeypatch.setenv("VOICECAP_BLOB_URL", url)
        blobs = open_blobstore(url)
    else:
        blobs = BlobStore(settings.blob_dir)
    referenced = seed(session, blobs)  # type: ignore[arg-type]
    orphan, _ = blobs.put_bytes(b"an upload whose row never committed", suffix=".webm")

    clean = run_json("blobs", "check")
    assert (clean["stored"], clean["referenced"], clean["missing"], clean["orphans"]) == (4, 3, 0, 1)
    assert clean["orphan_sample"] == [orphan] and clean["swept"] == 0

    # A young orphan may be an upload in flight: the grace period keeps it.
    kept = run_json("blobs", "check", "--sweep", "--grace-hours", "1")
    assert kept["orphans"] == 1 and kept["swept"] == 0 and blobs.exists(orphan)
    swept = run_json("blobs", "check", "--sweep", "--grace-hours", "0")
    assert swept["swept"] == 1 and not blobs.exists(orphan)
    assert all(blobs.exists(key) for key in referenced)

    lost = sorted(referenced)[0]
    blobs.delete(lost)
    result = run_cli("blobs", "check", check=False)
    assert result.returncode == 1
    assert "1 missing" in result.stdout and lost in result.stderr
    assert os.environ.get("VOICECAP_BLOB_URL", "") == (url if store == "s3" else "")
