"""`voicecap import-audio` through the real CLI: intake checks, idempotent re-runs, then the batch worker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Image, PointSet, Recording, RecordingStatus, Trace, Transcript
from tests.conftest import EXAMPLES
from tests.support.cli import run_cli, run_json
from tests.support.wer import word_error_rate
from tests.support.worker_data import SPEECH, speech_clips, wav_bytes

pytestmark = pytest.mark.slow


@pytest.fixture
def imported_setup(settings, engine, tmp_path: Path) -> dict[str, Path]:
    run_cli("project", "create", "imp", "--min-seconds", "5", "--max-seconds", "60")
    run_cli("user", "add", "ann1")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut.jpg", "coffee.jpg"):
        shutil.copy(EXAMPLES / "images" / name, photos / name)
    assert run_json("ingest", "imp", str(photos))["added"] == 2
    audio = tmp_path / "import" / "audio"
    audio.mkdir(parents=True)
    for name in ("boats.wav", "kitchen.flac", "desk.webm"):
        shutil.copy(SPEECH / name, audio / name)
    (audio / "short.wav").write_bytes(wav_bytes(speech_clips()[0].audio[: 2 * 16000]))
    (audio / "notes.txt").write_text("not audio")
    return {"photos": photos, "manifest": tmp_path / "import" / "manifest.jsonl"}


def write_manifest(path: Path, lines: list[object]) -> None:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")


def test_import_checks_every_line_is_idempotent_and_feeds_the_worker(
    imported_setup: dict[str, Path], session: Session
) -> None:
    astronaut = str((imported_setup["photos"] / "astronaut.jpg").absolute())
    coffee_sha = session.scalar(select(Image.sha256).where(Image.source.like("%coffee.jpg")))
    session.rollback()
    manifest = imported_setup["manifest"]
    first = {"image": astronaut, "audio": "audio/boats.wav", "annotator": "ann1", "metadata": {"take": 7}}
    write_manifest(
        manifest,
        [
            first,
            {"image": coffee_sha, "audio": "audio/kitchen.flac", "annotator": "ann1"},
            {"image": "../photos/coffee.jpg", "audio": "audio/desk.webm", "annotator": "ann1"},
            first,  # 4: the same take again
            "",  # blank lines are skipped
            "{not json",  # 6
            {"image": astronaut, "audio": "audio/missing.wav", "annotator": "ann1"},
            {"image": astronaut, "audio": "audio/boats.wav", "annotator": "nobody"},
            {"image": "elsewhere.jpg", "audio": "audio/boats.wav", "annotator": "ann1"},
            {"image": astronaut, "audio": "audio/short.wav", "annotator": "ann1"},  # 10
            {"image": astronaut, "audio": "audio/notes.txt", "annotator": "ann1"},
            {"image": astronaut, "audio": "audio/kitchen.flac", "annotator": "ann1", "metadata": [1]},
        ],
    )

    summary = run_json("import-audio", "imp", str(manifest))

    assert (summary["added"], summary["duplicate"]) == (3, 1)
    codes = {r["line"]: r["code"] for r in summary["rejected"]}
    assert codes == {
        6: "invalid_json",
        7: "audio_not_found",
        8: "unknown_annotator",
        9: "unknown_image",
        10: "audio_too_short",
        11: "unsupported_media_type",
        12: "invalid_line",
    }
    assert all(r["reason"] for r in summary["rejected"])
    assert next(r for r in summary["rejected"] if r["line"] == 10)["path"].endswith("short.wav")

    again = run_json("import-audio", "imp", str(manifest))
    assert (again["added"], again["duplicate"], len(again["rejected"])) == (0, 4, 7)

    recordings = list(session.scalars(select(Recording).order_by(Recording.id)))
    assert len(recordings) == 3
    assert {r.source for r in recordings} == {"import"}
    assert {r.status for r in recordings} == {RecordingStatus.uploaded}
    assert recordings[0].meta["take"] == 7 and recordings[0].meta["imported_from"] == "audio/boats.wav"
    assert 12 < recordings[0].duration_seconds < 13.5
    session.rollback()  # end the read transaction before the worker runs (and see its results after)

    totals = run_json("transcribe", "--device", "cpu")["transcribe"]
    assert totals["done"] == 3
    texts = {
        t.recording_id: t.text for t in session.scalars(select(Transcript).order_by(Transcript.recording_id))
    }
    references = {clip.file: clip.text for clip in speech_clips()}
    for recording, name in zip(recordings, ("boats.wav", "kitchen.flac", "desk.webm"), strict=True):
        assert word_error_rate(references[name], texts[recording.id]) < 0.25


def test_import_refuses_an_unknown_project_or_missing_manifest(imported_setup: dict[str, Path]) -> None:
    missing = run_cli("import-audio", "nope", str(imported_setup["manifest"]), check=False)
    assert missing.returncode == 1 and "No project named 'nope'" in missing.stderr
    unreadable = run_cli("import-audio", "imp", str(imported_setup["manifest"]), check=False)
    assert unreadable.returncode == 1 and "Cannot read manifest" in unreadable.stderr


def test_a_narrate_import_brings_each_take_with_its_pointing(
    settings, engine, tmp_path: Path, session: Session
) -> None:
    run_cli("project", "create", "walk", "--mode", "narrate", "--min-seconds", "5", "--max-seconds", "60")
    run_cli("user", "add", "ann1")
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(EXAMPLES / "images" / "astronaut.jpg", photos / "astronaut.jpg")
    assert run_json("ingest", "walk", str(photos))["added"] == 1
    image = str((photos / "astronaut.jpg").absolute())
    shutil.copy(SPEECH / "boats.wav", tmp_path / "boats.wav")
    shutil.copy(SPEECH / "kitchen.flac", tmp_path / "kitchen.flac")
    shutil.copy(SPEECH / "desk.webm", tmp_path / "desk.webm")  # the refused lines: never stored
    trace = [[[0.1, 0.2, 0.5], [0.2, 0.25, 0.55], [0.3, 0.3, 0.6]]]
    pointing = {"version": 1, "traces": trace, "points": [{"x": 0.3, "y": 0.3, "t": 0.6}]}
    (tmp_path / "kitchen.pointing.json").write_text(json.dumps({"traces": trace, "points": []}))
    line = {"image": image, "annotator": "ann1"}
    write_manifest(
        tmp_path / "manifest.jsonl",
        [
            {**line, "audio": "boats.wav", "pointing": pointing},
            {**line, "audio": "kitchen.flac", "pointing": "kitchen.pointing.json"},
            {**line, "audio": "desk.webm"},  # 3: a narrate take without its pointing
            {
                **line,
                "audio": "desk.webm",
                "pointing": {**pointing, "points": [{"x": 1.5, "y": 0.2, "t": 1}]},
            },
            {**line, "audio": "desk.webm", "pointing": {"traces": [[[0.1, 0.1, 99.0]]]}},  # 5: after the end
            {**line, "audio": "desk.webm", "pointing": "missing.json"},
            {**line, "audio": "desk.webm", "pointing": [1, 2]},  # 7
        ],
    )

    summary = run_json("import-audio", "walk", str(tmp_path / "manifest.jsonl"))

    assert (summary["added"], summary["duplicate"]) == (2, 0), summary
    codes = {r["line"]: r["code"] for r in summary["rejected"]}
    assert codes == {
        3: "pointing_missing",
        4: "pointing_out_of_image",
        5: "pointing_time_outside_take",
        6: "pointing_not_found",
        7: "invalid_line",
    }
    stored = {
        rec.meta["imported_from"]: rec.id
        for rec in session.scalars(select(Recording).where(Recording.source == "import"))
    }
    assert set(stored) == {"boats.wav", "kitchen.flac"}
    traces = {t.recording_id: t.segments for t in session.scalars(select(Trace))}
    assert traces == {stored["boats.wav"]: trace, stored["kitchen.flac"]: trace}
    points = {p.recording_id: (p.version, p.points) for p in session.scalars(select(PointSet))}
    assert points[stored["boats.wav"]][0] == 1
    assert [(q["x"], q["y"], q["t"]) for q in points[stored["boats.wav"]][1]] == [(0.3, 0.3, 0.6)]
    assert points[stored["kitchen.flac"]] == (1, [])
    session.rollback()
