"""roll-ups of the daily summaries, day marks, and QC figures, flags and histograms per take

- `summary_rollups`: the daily summaries rolled up per project and annotator, per project and day, and
  per project (day and project rows in slots), with active days per project and annotator.
- `active_days`: days someone recorded on, per project and across projects; `annotator_active_days`:
  days per annotator across projects.
- `take_figures`: each take's current QC figures, indexed per project on each compared metric.
- `qc_flags`: a flagged take's stored flags; `qc_flag_counts`: takes per project, annotator and flag.
- `metric_buckets`: each compared metric's histogram per project and annotator, and per project.

The tables start empty; `voicecap stats rebuild` fills them from existing rows, and from then on every
change counts itself (db.summaries, db.take_qc).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
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
    "active_days",
)
Z_METRICS = ("duration_seconds", "silence_fraction", "words_per_minute", "transcript_words", "faithfulness")


def _project() -> sa.Column:
    return sa.Column(
        "project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )


def _recording() -> sa.Column:
    return sa.Column(
        "recording_id", sa.Integer(), sa.ForeignKey("recordings.id", ondelete="CASCADE"), nullable=False
    )


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "summary_rollups",
        _project(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        _count("takes"),
        sa.Column("audio_seconds", sa.Float(), nullable=False, server_default="0"),
        *[_count(name) for name in COUNTS[1:]],
        sa.PrimaryKeyConstraint("project_id", "user_id", "day", "slot", name="pk_summary_rollups"),
    )
    op.create_table(
        "active_days",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "user_id", "day", name="pk_active_days"),
    )
    op.create_table(
        "annotator_active_days",
        sa.Column("user_id", sa.Integer(), nullable=False),
        _count("days"),
        sa.PrimaryKeyConstraint("user_id", name="pk_annotator_active_days"),
    )
    op.create_table(
        "take_figures",
        _recording(),
        _project(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("caption_id", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("loudness_dbfs", sa.Float(), nullable=True),
        sa.Column("silence_fraction", sa.Float(), nullable=True),
        sa.Column("words_per_minute", sa.Float(), nullable=True),
        sa.Column("transcript_words", sa.Integer(), nullable=True),
        sa.Column("caption_words", sa.Integer(), nullable=True),
        sa.Column("faithfulness", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("recording_id", name="pk_take_figures"),
    )
    for metric in Z_METRICS:
        op.create_index(f"ix_take_figures_{metric}", "take_figures", ["project_id", metric])
    op.create_index("ix_take_figures_user", "take_figures", ["project_id", "user_id", "recording_id"])
    op.create_table(
        "qc_flags",
        _recording(),
        sa.Column("flag", sa.String(60), nullable=False),
        _project(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("recording_id", "flag", name="pk_qc_flags"),
    )
    op.create_index("ix_qc_flags_project_flag", "qc_flags", ["project_id", "flag", "recording_id"])
    op.create_table(
        "qc_flag_counts",
        _project(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("flag", sa.String(60), nullable=False),
        _count("takes"),
        sa.PrimaryKeyConstraint("project_id", "user_id", "flag", name="pk_qc_flag_counts"),
    )
    op.create_table(
        "metric_buckets",
        _project(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        _count("takes"),
        sa.Column("total", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("project_id", "user_id", "metric", "bucket", name="pk_metric_buckets"),
    )


def downgrade() -> None:
    op.drop_table("metric_buckets")
    op.drop_table("qc_flag_counts")
    op.drop_index("ix_qc_flags_project_flag", table_name="qc_flags")
    op.drop_table("qc_flags")
    op.drop_index("ix_take_figures_user", table_name="take_figures")
    for metric in Z_METRICS:
        op.drop_index(f"ix_take_figures_{metric}", table_name="take_figures")
    op.drop_table("take_figures")
    op.drop_table("annotator_active_days")
    op.drop_table("active_days")
    op.drop_table("summary_rollups")
