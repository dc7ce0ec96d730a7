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
