"""SQLAlchemy 2 typed models. The Recording row is also the work queue (see docs/architecture.md)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores timezone-aware UTC on both backends (SQLite would otherwise hand back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Role(enum.StrEnum):
    annotator = "annotator"
    lead = "lead"
    admin = "admin"


class RecordingStatus(enum.StrEnum):
    uploaded = "uploaded"
    transcribing = "transcribing"
    transcribed = "transcribed"
    cleaning = "cleaning"
    captioned = "captioned"
    failed = "failed"
    rejected = "rejected"


class AssignmentStatus(enum.StrEnum):
    leased = "leased"
    submitted = "submitted"
    skipped = "skipped"
    expired = "expired"


class CaptionKind(enum.StrEnum):
    single = "single"  # cleaned from one transcript
    merged = "merged"  # one caption written from all transcripts of an image
    edited = "edited"  # a reviewer's edit of another caption


class CaptionStatus(enum.StrEnum):
    pending = "pending"  # waiting for review
    approved = "approved"
    rejected = "rejected"
    superseded = "superseded"  # a newer caption (an edit, a re-clean) replaced it


# A recording in one of these states no longer counts: QC or a reviewer rejected it, or it failed for good.
DEAD_RECORDING_STATES = (RecordingStatus.rejected, RecordingStatus.failed)


class ProjectMode(enum.StrEnum):
    describe = "describe"  # speak about the image
    narrate = "narrate"  # speak while the pointer is traced over the image; clicks drop points
    point = "point"  # point at every instance of each of the project's (or image's) labels


class ReviewDecision(enum.StrEnum):
    approve = "approve"
    edit = "edit"
    reject = "reject"
    retranscribe = "retranscribe"
    reclean = "reclean"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (native_enum=False) so adding a state never needs an ALTER TYPE.
    return Enum(cls, name=name, native_enum=False, length=20, validate_strings=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # A stable random id used in exports instead of the name.
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)


class Project(TimestampMixin, Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    instructions: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[list[Any]] = mapped_column(default=list)
    min_seconds: Mapped[float] = mapped_column(Float, default=30.0)
    max_seconds: Mapped[float] = mapped_column(Float, default=120.0)
    per_image: Mapped[int] = mapped_column(Integer, default=1)
    language: Mapped[str] = mapped_column(String(16), default="en")
    # The caption's language when it should differ from the spoken one (None: write what was spoken).
    caption_language: Mapped[str | None] = mapped_column(String(16), default=None)
    # The annotator page's own strings (web/i18n/<code>.json).
    interface_language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    mode: Mapped[ProjectMode] = mapped_column(
        _enum(ProjectMode, "project_mode"), default=ProjectMode.describe, server_default="describe"
    )
    # `point` mode: what to point at, unless an image names its own labels.
    labels: Mapped[list[Any]] = mapped_column(default=list)

    images: Mapped[list[Image]] = relationship(back_populates="project")


class Image(TimestampMixin, Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256", name="uq_images_project_sha256"),
        # "next image": the open images of a project, oldest first.
        Index("ix_images_next", "project_id", "done_count", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)  # the path or URL it was ingested from
    blob_key: Mapped[str] = mapped_column(String(200))  # original bytes in the blob store
    thumb_key: Mapped[str] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # Accepted recordings; with live leases it decides whether the image still needs annotators.
    done_count: Mapped[int] = mapped_column(Integer, default=0)
    # `point` mode: this image's labels from the ingest manifest (None: the project's labels).
    labels: Mapped[list[Any] | None] = mapped_column(JSON, default=None)

    project: Mapped[Project] = relationship(back_populates="images")


class Assignment(TimestampMixin, Base):
    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("image_id", "user_id", name="uq_assignments_image_user"),
        Index("ix_assignments_live", "image_id", "status", "lease_until"),
        Index("ix_assignments_user", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    status: Mapped[AssignmentStatus] = mapped_column(
        _enum(AssignmentStatus, "assignment_status"), default=AssignmentStatus.leased
    )
    lease_until: Mapped[datetime]
    skip_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Recording(TimestampMixin, Base):
    __tablename__ = "recordings"
    __table_args__ = (
        # The claim query: oldest ready row of a state.
        Index("ix_recordings_claim", "status", "next_attempt_at", "id"),
        Index("ix_recordings_image", "image_id"),
        Index("ix_recordings_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"), default=None)
    source: Mapped[str] = mapped_column(String(20), default="browser")  # browser | import

    # Audio: the original as uploaded and a 16 kHz mono WAV for the workers.
    original_key: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    wav_key: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # Intake QC
    duration_seconds: Mapped[float] = mapped_column(Float)
    loudness_dbfs: Mapped[float] = mapped_column(Float)
    silence_fraction: Mapped[float] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)

    # Work queue
    status: Mapped[RecordingStatus] = mapped_column(
        _enum(RecordingStatus, "recording_status"), default=RecordingStatus.uploaded
    )
    revision: Mapped[int] = mapped_column(Integer, default=1)  # bumped when sent back for re-work
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims, whatever their outcome
    # Why claims ended badly, counted apart (db/queue.py): a processor raised (`errors`, limited by
    # max_attempts), or the worker died holding the row (`crashes`); `crashes_alone` are the crashes
    # while it was claimed on its own (`isolated`), the only ones that count against it (max_crashes).
    errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    crashes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    crashes_alone: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    isolated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)


class Transcript(TimestampMixin, Base):
    __tablename__ = "transcripts"
    __table_args__ = (UniqueConstraint("recording_id", "revision", name="uq_transcripts_recording_revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    # [{start, end, text, avg_logprob, no_speech_prob, compression_ratio}]: no word timings (see `words`),
    # so the dataset export, which reads every row's segments, does not fetch them too.
    segments: Mapped[list[Any]] = mapped_column(default=list)
    # The words in order, [{start, end, word, probability}], for the review page's word-lit player only.
    # ~5 KB a transcript; kept apart from `segments` so only the review page pays for reading them. The
    # server default lets bulk loads that name no `words` column (COPY, raw INSERT) still store a list.
    words: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    avg_logprob: Mapped[float | None] = mapped_column(Float, default=None)
    engine: Mapped[str] = mapped_column(String(50))
    model: Mapped[str] = mapped_column(String(200))
    engine_version: Mapped[str] = mapped_column(String(50))
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    processing_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    words_per_minute: Mapped[float] = mapped_column(Float, default=0.0)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    # {low_word_share, mean_logprob, unsure, reasons, ..., cascade: {first, escalation, kept, reason}}
    # (transcribe/language_policy.py); {} for transcripts made before it was measured.
    confidence: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class Trace(TimestampMixin, Base):
    """The pointer's path over the image while a take was recorded (narrate mode); never edited.

    `segments` is a list of strokes (the pointer left the image or was lifted between them), each a list
    of [x, y, t]: x and y in 0..1 of the image as displayed (after EXIF orientation), t in seconds on
    the take's audio clock."""

    __tablename__ = "traces"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), unique=True)
    segments: Mapped[list[Any]] = mapped_column(default=list)
    sample_count: Mapped[int] = mapped_column(Integer, default=0)


class PointSet(TimestampMixin, Base):
    """A take's points, versioned like captions: version 1 is the annotator's (stored with the take),
    each correction by a reviewer adds the next version; the newest is current, the rest is history.

    `points` is a list of {x, y, t, label}: x and y in 0..1 of the image as displayed, t in seconds
    on the take's audio clock (None for a point a reviewer added), label a string or None (narrate).
    `absent_labels` are the labels the annotator answered "none in this image" for."""

    __tablename__ = "point_sets"
    __table_args__ = (UniqueConstraint("recording_id", "version", name="uq_point_sets_recording_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    points: Mapped[list[Any]] = mapped_column(default=list)
    absent_labels: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    # The set as an export writes it (export/pointing.point_set_export), stored by its writers so a large
    # export passes it through: its PixMo-Points groups as JSON and its Molmo text. NULL: not rendered
    # (the export renders it itself).
    export_groups: Mapped[str | None] = mapped_column(Text, default=None)
    points_text: Mapped[str | None] = mapped_column(Text, default=None)


class PointingAlignment(TimestampMixin, Base):
    """What the words of one transcript point at, computed by the worker after transcription.

    `words`: per transcript word, [first, last] trace sample indices drawn while it was spoken (flat
    over the segments; None when the pointer was off the image); `links`: per point (by index in the
    point set aligned), the noun phrase spoken nearest its time; `counts`: spoken numbers next to a
    phrase against the points linked to it. A disagreement is the take's `count_mismatch` flag."""

    __tablename__ = "pointing_alignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    transcript_id: Mapped[int] = mapped_column(ForeignKey("transcripts.id", ondelete="CASCADE"), unique=True)
    point_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("point_sets.id", ondelete="CASCADE"), default=None
    )
    words: Mapped[list[Any]] = mapped_column(default=list)
    links: Mapped[list[Any]] = mapped_column(default=list)
    counts: Mapped[list[Any]] = mapped_column(default=list)
    count_mismatch: Mapped[bool] = mapped_column(Boolean, default=False)


class Caption(TimestampMixin, Base):
    __tablename__ = "captions"
    __table_args__ = (
        # A job done twice stores one caption; a new prompt version adds a new one.
        UniqueConstraint("dedupe_key", name="uq_captions_dedupe_key"),
        Index("ix_captions_image", "image_id", "created_at"),
        Index("ix_captions_review", "status", "flagged", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    transcript_id: Mapped[int | None] = mapped_column(ForeignKey("transcripts.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("captions.id"), default=None)
    kind: Mapped[CaptionKind] = mapped_column(_enum(CaptionKind, "caption_kind"), default=CaptionKind.single)
    # e.g. "single:<transcript_id>:<cleaner>:<prompt_version>"
    dedupe_key: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    cleaner: Mapped[str] = mapped_column(String(50))
    model: Mapped[str] = mapped_column(String(200), default="")
    prompt_version: Mapped[str] = mapped_column(String(50), default="")
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    faithfulness: Mapped[float | None] = mapped_column(Float, default=None)  # 1.0 = every word supported
    unsupported_words: Mapped[list[Any]] = mapped_column(default=list)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[CaptionStatus] = mapped_column(
        _enum(CaptionStatus, "caption_status"), default=CaptionStatus.pending
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class Review(TimestampMixin, Base):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_caption", "caption_id", "created_at"),
        Index("ix_reviews_created", "created_at"),  # the dashboard's decisions in the last 24 hours
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    caption_id: Mapped[int] = mapped_column(ForeignKey("captions.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    decision: Mapped[ReviewDecision] = mapped_column(_enum(ReviewDecision, "review_decision"))
    reason: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20), default="web")  # web | cli | labelstudio
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)


class UserSession(Base):
    """One login. The cookie holds a random token; only its sha256 is stored (`id`), so a copy of the
    database lets nobody in. Deleting the row ends the session at once (logout, password reset, ...)."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class RateLimitCount(Base):
    """Hits on one limiter key in one fixed window; shared by every API process through the database."""

    __tablename__ = "rate_limit_counts"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window: Mapped[int] = mapped_column(Integer, primary_key=True)  # epoch seconds // window length
    count: Mapped[int] = mapped_column(Integer, default=0)


# The summary tables share this metadata (they import Base from here, so the import comes last).
import db.summary_models  # noqa: E402, F401
