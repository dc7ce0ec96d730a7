"""summary tables for the dashboard, stats and QC

Per project, annotator and day: takes, seconds of audio, failed and rejected takes, captions by status,
last review decisions and skips (daily_summaries); take lengths in log buckets for medians
(duration_buckets); images and complete images per project (image_counts); an index on reviews' time.
The tables start empty; `voicecap stats rebuild` fills them from existing rows, and from then on every
change counts itself (db.summaries).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COUNTS = (
    "takes",
    "failed_takes",
    "rejected_takes",
    "captions_pending",
    "captions_flagged_pending",
    "captions_approved",
    "captions_rejected",
    "captions_superseded",
    "caption_words",
    "approved",
    "rejected",
    "sent_back",
    "skips",
)


def _key_columns() -> list[sa.Column]:
    return [
        sa.Column(
            "project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "daily_summaries",
        *_key_columns(),
        sa.Column("takes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("audio_seconds", sa.Float(), nullable=False, server_default="0"),
        *[sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in COUNTS[1:]],
        sa.PrimaryKeyConstraint("project_id", "user_id", "day", name="pk_daily_summaries"),
    )
    op.create_index("ix_daily_summaries_day", "daily_summaries", ["project_id", "day"])
    # "Reviews in the last 24 hours" reads a day of reviews, not all of them.
    op.create_index("ix_reviews_created", "reviews", ["created_at"])
    op.create_table(
        "duration_buckets",
        *_key_columns(),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("takes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("seconds", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("project_id", "user_id", "day", "bucket", name="pk_duration_buckets"),
    )

    op.create_table(
        "image_counts",
        sa.Column(
            "project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("images_complete", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("project_id", "slot", name="pk_image_counts"),
    )


def downgrade() -> None:
    op.drop_table("image_counts")
    op.drop_table("duration_buckets")
    op.drop_index("ix_reviews_created", table_name="reviews")
    op.drop_index("ix_daily_summaries_day", table_name="daily_summaries")
    op.drop_table("daily_summaries")
