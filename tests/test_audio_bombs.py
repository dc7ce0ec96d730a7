"""Decompression bombs: a few KB that claim or decode to hours are refused early, with bounded memory,
and nothing is stored (issue #10, item 1)."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from annotate.services.intake import IntakeRejected
from db.models import Recording
from tests.support.audio_bombs import flac_bomb, lying_wav, opus_bomb
from tests.support.cli import run_cli, run_json
from tests.test_intake import snapshot, submit, task  # noqa: F401  (task is a fixture)
from transcribe.audio import AudioLimits, AudioRefused, AudioTooLong, decode_audio

# Decoding 20+5 s of 16 kHz float audio needs ~2 MB; the bombs below decode to 64-230 MB uncapped.
PEAK_BYTES = 16 * 1024 * 1024

BOMBS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "flac-hour": (lambda: flac_bomb(3600), "audio/flac", "audio_too_long"),
    "flac-hour-unstated": (lambda: flac_bomb(3600, stated=False), "audio/flac", "audio_too_long"),
    "wav-claims-1-hz": (lambda: lying_wav(rate=1), "audio/wav", "audio_bad_sample_rate"),
    "webm-opus-10-minutes": (lambda: opus_bomb(600), "audio/webm;codecs=opus", "audio_too_long"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_is_refused_with_bounded_memory_and_nothing_stored(
    session,
    settings,
    blobs,
    task,  # noqa: F811
    name,
) -> None:
    make, content_type, code = BOMBS[name]
    data = make()
    assert len(data) < 200_000
    before = snapshot(session, blobs)
    tracemalloc.start()
    try:
        with pytest.raises(IntakeRejected) as refused:
            submit(session, blobs, settings, task, data, content_type, "66666666-6666-4666-8666-666666666666")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    session.rollback()
    assert refused.value.code == code and refused.value.status == 422
    assert peak < PEAK_BYTES, f"{name}: {peak / 1e6:.0f} MB traced while refusing it"
    assert snapshot(session, blobs) == before
    assert session.scalar(select(func.count()).select_from(Recording)) == 0


def test_the_stated_duration_refuses_before_decoding_anything() -> None:
    # 3600 s stated by STREAMINFO: refused on the header, so the error names the whole hour.
    with pytest.raises(AudioTooLong) as refused:
        decode_audio(flac_bomb(3600), limits=AudioLimits(max_seconds=25))
    assert refused.value.seconds == pytest.approx(3600)
    # With the count unstated, decoding stops just past the cap.
    with pytest.raises(AudioTooLong) as counted:
        decode_audio(flac_bomb(3600, stated=False), limits=AudioLimits(max_seconds=25))
    assert 25 < counted.value.seconds < 40


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (lying_wav(rate=1), "audio_bad_sample_rate"),
        (lying_wav(rate=3_000_000), "audio_bad_sample_rate"),
        (lying_wav(rate=16000, channels=64, payload_bytes=4096), "audio_bad_channels"),
    ],
    ids=["1-hz", "3-mhz", "64-channels"],
)
def test_absurd_stream_parameters_are_refused_even_without_a_duration_cap(data: bytes, code: str) -> None:
    with pytest.raises(AudioRefused) as refused:
        decode_audio(data)
    assert refused.value.code == code


def test_honest_audio_under_the_cap_still_decodes_whole() -> None:
    audio = decode_audio(flac_bomb(20), limits=AudioLimits(max_seconds=25))
    assert len(audio) == 20 * 16000


@pytest.mark.slow
def test_import_audio_refuses_bombs_per_line(settings, engine, tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES

    run_cli("project", "create", "imp", "--min-seconds", "2", "--max-seconds", "30")
    run_cli("user", "add", "ann1")
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(EXAMPLES / "images" / "astronaut.jpg", photos / "astronaut.jpg")
    assert run_json("ingest", "imp", str(photos))["added"] == 1
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "bomb.flac").write_bytes(flac_bomb(3600, stated=False))
    (audio / "one-hz.wav").write_bytes(lying_wav(rate=1))
    image = str((photos / "astronaut.jpg").absolute())
    names = ("bomb.flac", "one-hz.wav")
    lines = [{"image": image, "audio": f"audio/{name}", "annotator": "ann1"} for name in names]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = run_json("import-audio", "imp", str(manifest))
    assert summary["added"] == 0
    assert {r["line"]: r["code"] for r in summary["rejected"]} == {
        1: "audio_too_long",
        2: "audio_bad_sample_rate",
    }
