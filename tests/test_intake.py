"""Audio intake on real audio: the formats browsers record, the measurements, and every refusal (with its
message, and without losing anything stored before)."""

from __future__ import annotations

import io
import itertools
import threading
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from annotate.services.assignments import next_assignment
from annotate.services.intake import IntakeRejected, accept_recording
from db.models import AssignmentStatus, Image, Recording
from tests.test_assignments import add_images, make_project
from transcribe.audio import decode_audio

SPEECH = Path(__file__).parent / "fixtures" / "speech"
RATE = 16000


# --- audio helpers shared by this topic's tests -----------------------------------------------------


def speech(seconds: float) -> np.ndarray:
    """Real (espeak-ng) speech at 16 kHz, looped or cut to `seconds`."""
    clip = decode_audio(SPEECH / "boats.wav")
    reps = int(np.ceil(seconds * RATE / len(clip)))
    return np.tile(clip, reps)[: int(seconds * RATE)]


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def encode(samples: np.ndarray, container: str) -> bytes:
    """Encode like the browsers do: webm/opus, ogg/opus or mp4/aac (PyAV's bundled encoders)."""
    if container == "wav":
        return wav_bytes(samples)
    codec, rate = {"webm": ("libopus", 48000), "ogg": ("libopus", 48000), "mp4": ("aac", 48000)}[container]
    resampled = np.interp(
        np.arange(int(len(samples) * rate / RATE)) * RATE / rate, np.arange(len(samples)), samples
    )
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = 48000
        pcm = (resampled * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


CONTENT_TYPES = {
    "webm": "audio/webm;codecs=opus",
    "ogg": "audio/ogg;codecs=opus",
    "mp4": "audio/mp4",
    "wav": "audio/wav",
}


@pytest.fixture
def task(session, settings, blobs, make_user):
    """A project (2-20 s), two images, an annotator holding a lease on the first."""
    project = make_project(session)
    images = add_images(session, blobs, project, 2)
    user, _ = make_user("ann")
    assignment = next_assignment(session, settings, user=user, project=project)
    session.commit()
    return {"project": project, "image": images[0], "user": user, "assignment": assignment}


def submit(session, blobs, settings, task, data: bytes | object, content_type: str, uuid: str):
    chunks = (
        data if not isinstance(data, bytes) else [data[i : i + 65536] for i in range(0, len(data), 65536)]
    )
    result = accept_recording(
        session,
        blobs,
        settings,
        project=task["project"],
        image=task["image"],
        user=task["user"],
        client_uuid=uuid,
        content_type=content_type,
        chunks=chunks,
        assignment=task["assignment"],
    )
    session.commit()
    return result


def snapshot(session, blobs) -> tuple[list[tuple[str, str, str]], set[str]]:
    rows = session.execute(select(Recording.client_uuid, Recording.original_key, Recording.wav_key)).all()
    return sorted(tuple(r) for r in rows), set(blobs.keys())


# --- accepted ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["webm", "ogg", "mp4", "wav"])
def test_browser_formats_are_stored_measured_and_transcoded(
    session, settings, blobs, task, container
) -> None:
    data = encode(speech(6.0), container)
    recording, created = submit(
        session, blobs, settings, task, data, CONTENT_TYPES[container], "00000000-0000-4000-8000-000000000001"
    )
    assert created and recording.status.value == "uploaded" and recording.source == "browser"
    assert blobs.read_bytes(recording.original_key) == data  # the original, byte for byte
    assert recording.size_bytes == len(data)
    assert recording.content_type == CONTENT_TYPES[container].split(";")[0]
    assert abs(recording.duration_seconds - 6.0) < 0.1
    assert -35 < recording.loudness_dbfs < -5
    assert 0.0 <= recording.silence_fraction < 0.5
    with wave.open(str(blobs.path(recording.wav_key))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert abs(wav.getnframes() / 16000 - 6.0) < 0.1
    session.refresh(task["assignment"])
    assert task["assignment"].status == AssignmentStatus.submitted
    assert session.get(Image, task["image"].id).done_count == 1


def test_the_shipped_browser_fixture_webm_is_accepted(session, settings, blobs, task) -> None:
    data = (SPEECH / "desk.webm").read_bytes()
    recording, _ = submit(
        session, blobs, settings, task, data, "audio/webm", "11111111-1111-4111-8111-111111111111"
    )
    assert abs(recording.duration_seconds - 15.29) < 0.2


def test_a_repeated_uuid_stores_exactly_one_recording(session, settings, blobs, task) -> None:
    data = encode(speech(4.0), "webm")
    uuid = "22222222-2222-4222-8222-222222222222"
    first, created = submit(session, blobs, settings, task, data, "audio/webm", uuid)
    again, created_again = submit(session, blobs, settings, task, data, "audio/webm", uuid)
    assert created and not created_again and again.id == first.id
    assert session.scalar(select(func.count()).select_from(Recording)) == 1
    assert session.get(Image, task["image"].id).done_count == 1


def test_concurrent_duplicate_uploads_store_one_row(engine, settings, blobs, task) -> None:
    data = encode(speech(4.0), "webm")
    uuid = "33333333-3333-4333-8333-333333333333"
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def upload() -> None:
        with factory() as own:
            mine = {k: own.merge(v) for k, v in task.items()}
            own.commit()  # release SQLite's write lock before the race
            barrier.wait(timeout=30)
            try:
                _, created = submit(own, blobs, settings, mine, data, "audio/webm", uuid)
                outcomes.append(created)
            except Exception as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes, key=str) == [False, False, False, True], outcomes
    with factory() as check:
        assert check.scalar(select(func.count()).select_from(Recording)) == 1
        assert check.get(Image, task["image"].id).done_count == 1


# --- refused -----------------------------------------------------------------------------------------


def _bad_inputs(settings) -> dict[str, tuple[object, str]]:
    quiet = speech(8.0)
    quiet[int(0.4 * RATE) :] = 0.0  # 0.4 s of speech, then silence
    return {
        "audio_empty": (b"", "audio/webm"),
        "audio_undecodable": (b"this is not audio at all " * 200, "audio/webm"),
        "audio_too_short": (encode(speech(1.0), "webm"), "audio/webm"),
        "audio_too_long": (encode(speech(26.0), "ogg"), "audio/ogg"),
        "audio_silent": (wav_bytes(quiet), "audio/wav"),
        "unsupported_media_type": (encode(speech(4.0), "webm"), "text/plain"),
    }


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("audio_empty", "empty"),
        ("audio_undecodable", "could not be decoded"),
        ("audio_too_short", "at least 2 s"),
        ("audio_too_long", "at most 20 s"),
        ("audio_silent", "microphone is not muted"),
        ("unsupported_media_type", "not accepted"),
    ],
)
def test_bad_takes_are_refused_with_a_message_and_lose_nothing(
    session, settings, blobs, task, code, words
) -> None:
    good = encode(speech(5.0), "webm")
    submit(session, blobs, settings, task, good, "audio/webm", "44444444-4444-4444-8444-444444444444")
    before = snapshot(session, blobs)
    # The next image, for the bad take.
    task["assignment"] = next_assignment(session, settings, user=task["user"], project=task["project"])
    task["image"] = session.get(Image, task["assignment"].image_id)
    session.commit()
    data, content_type = _bad_inputs(settings)[code]
    with pytest.raises(IntakeRejected) as refused:
        submit(session, blobs, settings, task, data, content_type, "55555555-5555-4555-8555-555555555555")
    session.rollback()
    assert refused.value.code == code and words in refused.value.message
    assert snapshot(session, blobs) == before  # no new row, no new blob, the old ones intact
    assert not list((blobs.root / ".tmp").iterdir())
    assert blobs.read_bytes(before[0][0][1]) == good
    session.refresh(task["assignment"])
    assert task["assignment"].status == AssignmentStatus.leased  # can re-record
    assert session.get(Image, task["image"].id).done_count == 0


def test_size_limit_is_checked_while_streaming(session, settings, blobs, task) -> None:
    settings.max_upload_mb = 0.25
    before = snapshot(session, blobs)
    pulled = 0

    def endless() -> object:
        nonlocal pulled
        for chunk in itertools.repeat(b"\x1a" * 65536):
            pulled += 1
            yield chunk

    with pytest.raises(IntakeRejected) as refused:
        submit(
            session, blobs, settings, task, endless(), "audio/webm", "66666666-6666-4666-8666-666666666666"
        )
    assert refused.value.code == "audio_too_large" and refused.value.status == 413
    assert "0.25 MB" in refused.value.message
    assert pulled <= 5  # stopped as soon as the limit was passed, never read the (endless) rest
    session.rollback()
    assert snapshot(session, blobs) == before and not list((blobs.root / ".tmp").iterdir())


def test_rejected_bytes_that_an_accepted_take_shares_are_kept(
    session, settings, blobs, task, make_user
) -> None:
    data = encode(speech(5.0), "webm")
    submit(session, blobs, settings, task, data, "audio/webm", "77777777-7777-4777-8777-777777777777")
    before = snapshot(session, blobs)
    task["project"].min_seconds = 10  # the same bytes are now too short
    session.commit()
    task["assignment"] = next_assignment(session, settings, user=task["user"], project=task["project"])
    session.commit()
    with pytest.raises(IntakeRejected):
        submit(session, blobs, settings, task, data, "audio/webm", "88888888-8888-4888-8888-888888888888")
    session.rollback()
    assert snapshot(session, blobs) == before
