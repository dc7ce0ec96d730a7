"""indexes for the stats calls' grouped reads of the roll-up grains

The stats calls read one grain of `summary_rollups`, `duration_buckets` and `active_days` at a time:
the rows of every annotator or every project with no day (day ''), or a project's rows of every day.
Their primary keys lead with the project, so a read across projects scanned the whole table and a
project's per-annotator histogram rows were found among all its per-annotator-and-day rows. These
indexes lead with the day (then the annotator) so each read is one index range.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0009"
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


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
