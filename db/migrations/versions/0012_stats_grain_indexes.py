"""stats reads: an index range per roll-up grain, and each annotator's take lengths across projects

The stats calls read one grain of `summary_rollups`, `duration_buckets` and `active_days` at a time:
the rows of every annotator or every project with no day (day ''), or a project's rows of every day.
Their primary keys lead with the project, so a read across projects scanned the whole table and a
project's per-annotator histogram rows were found among all its per-annotator-and-day rows. These
indexes lead with the day (then the annotator) so each read is one index range.

`annotator_duration_buckets`: each annotator's take-length histogram across projects (the median per
annotator over all projects otherwise sums one histogram per project and annotator on every call),
filled here from the per-annotator rows of `duration_buckets`; from then on every take counts itself.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_summary_rollups_grain": ("summary_rollups", ["day", "user_id", "project_id"]),
    "ix_duration_buckets_grain": ("duration_buckets", ["day", "user_id", "project_id", "bucket"]),
    "ix_active_days_user": ("active_days", ["user_id", "project_id", "day"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)
    op.create_table(
        "annotator_duration_buckets",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("takes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("seconds", sa.Float(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("user_id", "bucket", name="pk_annotator_duration_buckets"),
    )
    # user_id -1 and day '' are the per-annotator rows' markers as of this revision.
    op.execute(
        "INSERT INTO annotator_duration_buckets (user_id, bucket, takes, seconds) "
        "SELECT user_id, bucket, sum(takes), sum(seconds) FROM duration_buckets "
        "WHERE user_id != -1 AND day = '' GROUP BY user_id, bucket HAVING sum(takes) != 0"
    )


def downgrade() -> None:
    op.drop_table("annotator_duration_buckets")
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
