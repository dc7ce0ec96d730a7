"""where each annotator's median per QC metric stands in their histogram

- `qc_medians`: per project, annotator and metric, the takes in the annotator's histogram
  (`metric_buckets`), the bucket holding the lower middle one and the takes before that bucket. Kept by
  db.take_qc as takes change, so a QC report reads one or two bucket rows per annotator and metric.

Filled here from the histograms already counted (none before `voicecap stats rebuild` has run, which
recounts it too).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qc_medians",
        sa.Column(
            "project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("takes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("bucket", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("below", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("project_id", "user_id", "metric", name="pk_qc_medians"),
    )
    # Per annotator histogram (user_id -1 is the project's): the bucket whose running count first
    # passes the lower middle position (n - 1) // 2.
    op.execute(
        "INSERT INTO qc_medians (project_id, user_id, metric, takes, bucket, below) "
        "SELECT project_id, user_id, metric, n, bucket, upto - takes FROM ("
        " SELECT project_id, user_id, metric, bucket, takes,"
        " sum(takes) OVER (PARTITION BY project_id, user_id, metric ORDER BY bucket) AS upto,"
        " sum(takes) OVER (PARTITION BY project_id, user_id, metric) AS n"
        " FROM metric_buckets WHERE user_id <> -1 AND takes > 0"
        ") AS running WHERE upto - takes <= (n - 1) / 2 AND (n - 1) / 2 < upto"
    )


def downgrade() -> None:
    op.drop_table("qc_medians")
