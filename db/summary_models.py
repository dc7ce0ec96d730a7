"""Pre-aggregated counts the dashboard, `voicecap stats` and QC read instead of scanning every take.

One row per project, annotator and day (`user_id` 0 stands for "no annotator": a caption merged from
several takes). What a day means follows the figure: a take counts on the day it was recorded, its
captions on the take's day, a review decision on the day it was decided, a skip on the day it happened.
Kept up to date by db.summaries in the same transaction as the change they count.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base

NO_ANNOTATOR = 0


class DailySummary(Base):
    __tablename__ = "daily_summaries"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    failed_takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected_takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Captions by their status now (the review queue is the pending ones), and words of the current ones.
    captions_pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_flagged_pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_approved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_superseded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    caption_words: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # not superseded
    approved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # last decision per caption
    rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_back: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skips: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# DurationBucket rows also hold roll-ups: user_id ALL_ANNOTATORS and/or day ALL_DAYS.
ALL_ANNOTATORS = -1
ALL_DAYS = ""


class DurationBucket(Base):
    """Take lengths in ~5% wide log buckets with their exact sum: medians to within a couple of percent.

    Kept at four grains (project; project and annotator; project and day; all three) so a median per
    project, annotator or day reads only that grain's rows.
    """

    __tablename__ = "duration_buckets"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class AnnotatorDurationBucket(Base):
    """An annotator's take lengths across projects, in DurationBucket's buckets: the median per
    annotator over all projects reads one histogram per annotator, not one per project and annotator.
    Derived from the per-annotator grain by `voicecap stats rebuild` (and migration 0012)."""

    __tablename__ = "annotator_duration_buckets"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


# The stats calls read one grain across projects (day ALL_DAYS; every annotator or ALL_ANNOTATORS):
# one index range each (migration 0012), where the primary key would scan every project's rows.
Index(
    "ix_duration_buckets_grain",
    DurationBucket.day,
    DurationBucket.user_id,
    DurationBucket.project_id,
    DurationBucket.bucket,
)

CAPTION_STATE_COLUMNS = {
    "pending": "captions_pending",
    "approved": "captions_approved",
    "rejected": "captions_rejected",
    "superseded": "captions_superseded",
}
TAKE_STATE_COLUMNS = {"failed": "failed_takes", "rejected": "rejected_takes"}

# The day grouping reads a project's rows by day.
Index("ix_daily_summaries_day", DailySummary.project_id, DailySummary.day)


IMAGE_COUNT_SLOTS = 16


class ImageCount(Base):
    """Images of a project and how many have all the takes they need (done_count >= per_image).

    Spread over slots (image id modulo IMAGE_COUNT_SLOTS) so concurrent uploads of one project do not
    all wait on one row's lock; readers sum the slots.
    """

    __tablename__ = "image_counts"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    images: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    images_complete: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# Roll-ups of daily_summaries, so a grouping reads a few thousand rows: per project and annotator
# (day ALL_DAYS), per project and day (user_id ALL_ANNOTATORS) and per project (both). Every change in
# a project touches its day and project rows, so those are spread over slots (the annotator's id modulo
# ROLLUP_SLOTS, a per-annotator row always has one slot) and readers sum them.
ROLLUP_SLOTS = 16
# Per project and day, a merged caption (no annotator, no take's day) counts its review decisions only.
DAY_ROLLUP_SKIPS_FOR_NO_ANNOTATOR = (
    "captions_pending",
    "captions_flagged_pending",
    "captions_approved",
    "captions_rejected",
    "captions_superseded",
    "caption_words",
)


class SummaryRollup(Base):
    __tablename__ = "summary_rollups"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    failed_takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected_takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_flagged_pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_approved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    captions_superseded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    caption_words: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    approved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_back: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skips: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Per project and annotator: the days the annotator recorded in the project.
    active_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


Index("ix_summary_rollups_grain", SummaryRollup.day, SummaryRollup.user_id, SummaryRollup.project_id)

# A day on which someone recorded, marked once when an (annotator, day) row's takes go from 0 to 1:
# (project, ALL_ANNOTATORS, day) for a project's active days, (ALL_PROJECTS, annotator, day) and
# (ALL_PROJECTS, ALL_ANNOTATORS, day) across projects. At most projects x days + annotators x days rows.
ALL_PROJECTS = 0


class ActiveDay(Base):
    __tablename__ = "active_days"

    project_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)


Index("ix_active_days_user", ActiveDay.user_id, ActiveDay.project_id, ActiveDay.day)


class AnnotatorActiveDays(Base):
    """Days an annotator recorded on in any project, counted when their (ALL_PROJECTS, annotator, day)
    mark is first written, so the all-projects grouping reads one row per annotator."""

    __tablename__ = "annotator_active_days"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class TakeFigures(Base):
    """A take's current QC figures in one row: its intake measures, its latest transcript's and its
    current caption's. Indexed per project on each compared metric, so the takes beyond a project's
    outlier thresholds are found by index ranges, never by reading every take."""

    __tablename__ = "take_figures"

    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer)
    caption_id: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    loudness_dbfs: Mapped[float | None] = mapped_column(Float, default=None)
    silence_fraction: Mapped[float | None] = mapped_column(Float, default=None)
    words_per_minute: Mapped[float | None] = mapped_column(Float, default=None)
    transcript_words: Mapped[int | None] = mapped_column(Integer, default=None)
    caption_words: Mapped[int | None] = mapped_column(Integer, default=None)
    faithfulness: Mapped[float | None] = mapped_column(Float, default=None)


# The metrics QC compares with the project's distribution (robust z), each indexed per project.
Z_METRICS = ("duration_seconds", "silence_fraction", "words_per_minute", "transcript_words", "faithfulness")
for _metric in Z_METRICS:
    Index(f"ix_take_figures_{_metric}", TakeFigures.project_id, getattr(TakeFigures, _metric))
Index("ix_take_figures_user", TakeFigures.project_id, TakeFigures.user_id, TakeFigures.recording_id)


class QcFlag(Base):
    """A flagged take's stored flags (unflagged takes have no rows): rule breaks judged when the take
    was measured or changed, and whatever the stages put in the recording's meta["qc_flags"]."""

    __tablename__ = "qc_flags"

    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    flag: Mapped[str] = mapped_column(String(60), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer)


Index("ix_qc_flags_project_flag", QcFlag.project_id, QcFlag.flag, QcFlag.recording_id)

# QcFlagCount's flag for "takes with at least one stored flag".
ANY_STORED_FLAG = "*"


class QcFlagCount(Base):
    """Takes per project, annotator and stored flag (and ANY_STORED_FLAG)."""

    __tablename__ = "qc_flag_counts"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    flag: Mapped[str] = mapped_column(String(60), primary_key=True)
    takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class MetricBucket(Base):
    """Each Z metric's histogram per project and annotator, and per project (user_id ALL_ANNOTATORS):
    the project's median and spread and each annotator's median come from a few thousand rows."""

    __tablename__ = "metric_buckets"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class QcMedian(Base):
    """Where each annotator's median per metric stands in their histogram (metric_buckets): the bucket
    holding the lower middle take (position (takes - 1) // 2, counting from 0 in bucket order) and how many
    takes lie in the buckets before it. Moved a bucket at a time as takes come and go, so a report reads
    one or two bucket rows per annotator and metric instead of every bucket."""

    __tablename__ = "qc_medians"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    takes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bucket: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    below: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
