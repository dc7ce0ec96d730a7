"""Recording intake: store a take, decode it, measure it, refuse what cannot become a caption.

The original is streamed into the blob store (temp file, fsync, rename; the size limit is enforced as
bytes arrive), decoded in-process with PyAV (no ffmpeg binary), measured with pydub (duration, loudness,
share of silence) and transcoded to a 16 kHz mono WAV for the workers. Only then is the row written,
so a committed row never points at a partial file. On a bucket the bytes are also teed into a local temp
file as they stream (`put_stream_spooled`), and decoded from there: no GET of the object just written.

Callers should end their read transaction before calling `accept_recording`: nothing here touches the
database until the audio is checked, so a slow upload never holds SQLite's write lock.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annotate.errors import Conflict, Forbidden, VoicecapError
from annotate.services import pointing as pointing_rules
from annotate.services.export.pointing import point_set_export
from annotate.services.pointing import Pointing
from db import summaries
from db.blobstore import Blobs, BlobTooLarge, Spooled
from db.models import (
    Assignment,
    AssignmentStatus,
    Image,
    PointSet,
    Project,
    Recording,
    Trace,
    User,
)
from db.settings import Settings
from transcribe.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioLimits,
    AudioRefused,
    AudioTooLong,
    decode_audio,
)

with warnings.catch_warnings():
    # pydub warns at import when no ffmpeg is on PATH (we point it at imageio-ffmpeg's binary below)
    # and that audioop, which it measures with, leaves Python in 3.13.
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment

AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()

# Browsers record webm/opus (Chromium, Firefox), ogg/opus (older Firefox) or mp4/aac (Safari); imports
# also bring wav, flac and mp3. Value: the suffix of the stored original.
CONTENT_TYPES: dict[str, str] = {
    "audio/webm": ".webm",
    "video/webm": ".webm",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mp4": ".m4a",
    "video/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/vnd.wave": ".wav",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/mpeg": ".mp3",
}
SILENCE_WINDOW_MS = 100  # a pause shorter than this is part of speech, not silence
SILENCE_STEP_MS = 10
LOUDNESS_FLOOR_DBFS = -120.0  # digital silence is -inf; rows store a finite number


class IntakeRejected(VoicecapError):
    """A take we will not store; `message` is shown to the annotator, who can re-record."""

    code = "audio_rejected"
    status = 422


@dataclass(frozen=True)
class AudioMeasures:
    duration_seconds: float
    loudness_dbfs: float  # RMS over the whole take
    peak_dbfs: float
    silence_fraction: float  # share of the take quieter than the silence threshold


def base_content_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def suffix_for(content_type: str) -> str:
    base = base_content_type(content_type)
    if base not in CONTENT_TYPES:
        accepted = "webm/opus, ogg/opus, mp4/aac, wav, flac or mp3"
        raise IntakeRejected(
            f"Audio of type {base or 'unknown'!r} is not accepted; send {accepted}.",
            code="unsupported_media_type",
            status=415,
        )
    return CONTENT_TYPES[base]


def max_upload_bytes(settings: Settings) -> int:
    return int(settings.max_upload_mb * 1024 * 1024)


def measure(samples: np.ndarray, silence_threshold_dbfs: float) -> AudioMeasures:
    """Duration, loudness (pydub) and share of silence of 16 kHz mono float samples."""
    segment = _segment(samples)
    if len(segment) == 0:
        return AudioMeasures(0.0, LOUDNESS_FLOOR_DBFS, LOUDNESS_FLOOR_DBFS, 1.0)
    return AudioMeasures(
        duration_seconds=len(samples) / SAMPLE_RATE,
        loudness_dbfs=_finite(segment.dBFS),
        peak_dbfs=_finite(segment.max_dBFS),
        silence_fraction=silence_fraction(samples, silence_threshold_dbfs),
    )


def silence_fraction(samples: np.ndarray, threshold_dbfs: float) -> float:
    """The share of the take inside silent stretches, as pydub.silence.detect_silence counts them
    (windows of SILENCE_WINDOW_MS whose RMS is under the threshold, tried every SILENCE_STEP_MS), but
    vectorised: pydub's loop costs ~60 ms per minute of audio, this ~3 ms."""
    window = SAMPLE_RATE * SILENCE_WINDOW_MS // 1000
    step = SAMPLE_RATE * SILENCE_STEP_MS // 1000
    if len(samples) < window:
        window = len(samples)
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0)  # pydub measures 16-bit samples
    energy = np.concatenate(([0.0], np.cumsum(pcm * pcm, dtype=np.float64)))
    starts = np.arange(0, len(samples) - window + 1, step)
    rms = np.sqrt((energy[starts + window] - energy[starts]) / window)
    with np.errstate(divide="ignore"):
        dbfs = 20.0 * np.log10(rms / 32768.0)
    silent = dbfs < threshold_dbfs
    # Every step-long block covered by at least one silent window is silence.
    blocks = -(-len(samples) // step)
    covered = np.zeros(blocks + window // step, dtype=np.int32)
    for offset in range(max(1, window // step)):
        covered[offset : offset + len(silent)] |= silent
    silent_samples = min(len(samples), int(covered[:blocks].sum()) * step)
    return round(silent_samples / len(samples), 4)


def to_wav(samples: np.ndarray) -> bytes:
    """16 kHz mono 16-bit PCM WAV (pydub writes WAV with the standard library, no ffmpeg)."""
    buffer = io.BytesIO()
    _segment(samples).export(buffer, format="wav")
    return buffer.getvalue()


def _segment(samples: np.ndarray) -> AudioSegment:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    return AudioSegment(data=pcm.tobytes(), sample_width=2, frame_rate=SAMPLE_RATE, channels=1)


def _finite(dbfs: float) -> float:
    return LOUDNESS_FLOOR_DBFS if math.isinf(dbfs) or dbfs < LOUDNESS_FLOOR_DBFS else round(dbfs, 2)


def check_measures(measures: AudioMeasures, project: Project, settings: Settings) -> None:
    """Refuse a take with a message that says what to do about it."""
    seconds = measures.duration_seconds
    if seconds == 0:
        raise IntakeRejected("The recording has no sound in it. Please record again.", code="audio_empty")
    if seconds < project.min_seconds:
        raise IntakeRejected(
            f"The recording is {seconds:.1f} s long; this project needs at least {project.min_seconds:g} s. "
            "Please describe the image in more detail and record again.",
            code="audio_too_short",
        )
    limit = project.max_seconds + settings.duration_tolerance_seconds
    if seconds > limit:
        raise IntakeRejected(
            f"The recording is {seconds:.1f} s long; this project allows at most {project.max_seconds:g} s. "
            "Please record a shorter description.",
            code="audio_too_long",
        )
    if measures.silence_fraction > settings.max_silence_fraction:
        raise IntakeRejected(
            f"The recording is {measures.silence_fraction:.0%} silence. Check that your microphone is not "
            "muted and that you are close to it, then record again.",
            code="audio_silent",
        )


def intake_flags(measures: AudioMeasures, settings: Settings) -> list[str]:
    """What a lead should know about a take that passed the checks (kept in the recording's meta)."""
    flags: list[str] = []
    if measures.loudness_dbfs < settings.quiet_loudness_dbfs:
        flags.append("quiet")  # Common Voice warns at ~-45 dBFS; Whisper mishears such takes
    if measures.silence_fraction > settings.mostly_silent_fraction:
        flags.append("mostly_silent")
    return flags


def find_recording(session: Session, client_uuid: str) -> Recording | None:
    return session.scalar(select(Recording).where(Recording.client_uuid == client_uuid))


def accept_recording(
    session: Session,
    blobs: Blobs,
    settings: Settings,
    *,
    project: Project,
    image: Image,
    user: User,
    client_uuid: str,
    content_type: str,
    chunks: Iterable[bytes],
    assignment: Assignment | None = None,
    source: str = "browser",
    meta: dict[str, Any] | None = None,
    pointing: Pointing | None = None,
) -> tuple[Recording, bool]:
    """Store, check and record one take; returns (recording, created).

    A repeated `client_uuid` returns the existing recording with created=False (a retried upload
    stores exactly one). Raises IntakeRejected (nothing kept) for a take that fails a check, and
    PointingRejected for pointing data that does not fit the project, the image or the take. A
    narrate or point take's trace and first point set are flushed with the recording (one
    transaction). Marks the assignment submitted and counts the image done. Flushes; the caller commits.
    """
    suffix = suffix_for(content_type)
    check_pointing(project, image, pointing)
    counted = _Counter(chunks)
    spool = ExitStack()  # the take as a local file, decoded without reading it back from the store
    original = _store_original(spool, blobs, counted, suffix, max_upload_bytes(settings))
    stored = [original.key]
    keep = False
    try:
        if counted.size == 0:
            raise IntakeRejected("The upload was empty. Please record again.", code="audio_empty")
        samples = _decode_bounded(original.path, project, settings)
        spool.close()  # decoded: the local copy is not needed while the rest waits on the database
        measures = measure(samples, settings.silence_threshold_dbfs)
        check_measures(measures, project, settings)
        if pointing is not None:  # times need the decoded duration
            pointing_rules.check_times(
                pointing.traces,
                pointing.points,
                measures.duration_seconds,
                settings.pointing_time_tolerance_seconds,
            )
        wav_key, _ = blobs.put_bytes(to_wav(samples), suffix=".wav")
        stored.append(wav_key)
        recording, created = _insert(
            session,
            Recording(
                client_uuid=client_uuid,
                project_id=project.id,
                image_id=image.id,
                user_id=user.id,
                assignment_id=assignment.id if assignment is not None else None,
                source=source,
                original_key=original.key,
                content_type=base_content_type(content_type),
                wav_key=wav_key,
                size_bytes=counted.size,
                duration_seconds=round(measures.duration_seconds, 3),
                loudness_dbfs=measures.loudness_dbfs,
                silence_fraction=round(measures.silence_fraction, 4),
                meta={
                    **(meta or {}),
                    "peak_dbfs": measures.peak_dbfs,
                    "qc_flags": intake_flags(measures, settings),
                },
            ),
            user,
            pointing,
        )
        keep = True
        if created:
            if assignment is not None:
                assignment.status = AssignmentStatus.submitted
            done = session.scalar(
                update(Image)
                .where(Image.id == image.id)
                .values(done_count=Image.done_count + 1)
                .returning(Image.done_count)
            )
            if done == project.per_image:  # this take completed the image
                summaries.images_changed(session, project.id, slot=image.id, complete=1)
            session.flush()
        return recording, created
    finally:
        spool.close()
        if not keep:
            _discard_unreferenced(session, blobs, stored)


def check_pointing(project: Project, image: Image, pointing: Pointing | None) -> None:
    """What can be checked before any audio is read: the mode wants (or refuses) pointing data, and
    its labels are the image's."""
    pointing_rules.check_expected(project.mode, pointing is not None)
    if pointing is not None:
        labels = pointing_rules.effective_labels(image.labels, project.labels)
        pointing_rules.check_labels(project.mode, labels, pointing.points, pointing.absent_labels)


def _decode_bounded(path: Path, project: Project, settings: Settings) -> np.ndarray:
    """Decode with a hard cap at the longest take the project accepts: a few KB can claim hours."""
    max_seconds = project.max_seconds + settings.duration_tolerance_seconds
    try:
        return decode_audio(path, limits=AudioLimits(max_seconds=max_seconds))
    except AudioTooLong:
        raise IntakeRejected(
            f"The recording is longer than this project allows (at most {project.max_seconds:g} s). "
            "Please record a shorter description.",
            code="audio_too_long",
        ) from None
    except AudioRefused as exc:
        raise IntakeRejected(
            f"The recording's format is not accepted ({exc}). Please record again.", code=exc.code
        ) from None
    except AudioDecodeError:
        raise IntakeRejected(
            "The recording could not be decoded (the file is damaged or not audio). Please record again.",
            code="audio_undecodable",
        ) from None


def _store_original(
    spool: ExitStack, blobs: Blobs, chunks: Iterable[bytes], suffix: str, limit: int
) -> Spooled:
    """Store the take under its content key; a local file of it lives until `spool` is closed."""
    try:
        return spool.enter_context(blobs.put_stream_spooled(chunks, suffix=suffix, max_bytes=limit))
    except BlobTooLarge:
        raise IntakeRejected(
            f"The recording is larger than the limit of {limit / 1024 / 1024:.3g} MB.",
            code="audio_too_large",
            status=413,
        ) from None


class _Counter:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if chunk:
                self.size += len(chunk)
                yield chunk


def _insert(
    session: Session, recording: Recording, user: User, pointing: Pointing | None = None
) -> tuple[Recording, bool]:
    existing = find_recording(session, recording.client_uuid)
    if existing is None:
        try:
            with session.begin_nested():
                session.add(recording)
                session.flush()
                if pointing is not None:
                    _add_pointing(session, recording, pointing)
            return recording, True
        except IntegrityError:
            # The same upload arrived twice at once; the other request stored it.
            existing = find_recording(session, recording.client_uuid)
            if existing is None:
                raise
    if existing.user_id != user.id:
        raise Conflict("This recording id belongs to another user.", code="recording_id_conflict")
    return existing, False


def _add_pointing(session: Session, recording: Recording, pointing: Pointing) -> None:
    """The take's trace (possibly empty) and the annotator's point set, version 1."""
    session.add(
        Trace(
            recording_id=recording.id,
            segments=pointing.segments_json(),
            sample_count=pointing.sample_count,
        )
    )
    points, absent = pointing.points_json(), list(pointing.absent_labels)
    export_groups, points_text = point_set_export(points, absent, recording.id)
    session.add(
        PointSet(
            recording_id=recording.id,
            version=1,
            points=points,
            absent_labels=absent,
            created_by=None,
            export_groups=export_groups,
            points_text=points_text,
        )
    )
    session.flush()


def _discard_unreferenced(session: Session, blobs: Blobs, keys: list[str]) -> None:
    """Delete stored blobs of a refused take that no row names (the same bytes may belong to an
    accepted take). Best effort: an orphan left behind is the sweeper's, and must not hide the error."""
    for key in keys:
        try:
            referenced = session.scalar(
                select(Recording.id)
                .where(or_(Recording.original_key == key, Recording.wav_key == key))
                .limit(1)
            )
            if referenced is None:
                blobs.delete(key)
        except Exception:
            pass


def check_assignment_open(assignment: Assignment, user: User) -> None:
    """A take may be submitted for the user's own leased (even lapsed) assignment, once."""
    if assignment.user_id != user.id:
        raise Forbidden("This image is assigned to someone else.", code="not_your_assignment")
    if assignment.status == AssignmentStatus.skipped:
        raise Conflict("You skipped this image; its recording is not needed.", code="assignment_closed")
    if assignment.status == AssignmentStatus.submitted:
        raise Conflict(
            "You already submitted a description of this image.", code="assignment_already_submitted"
        )
