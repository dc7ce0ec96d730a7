"""worker crashes counted apart from errors

A claim that ends because its worker died (the lease ran out) no longer uses up one of the
`max_attempts` meant for errors. `recordings` gains:

- `errors`: claims that ended with the processor raising (limited by max_attempts);
- `crashes`: claims that ended with the worker dying while holding the row;
- `crashes_alone`: of those, the ones while the row was claimed on its own (limited by max_crashes);
- `isolated`: the row's batch died with its worker, so it is claimed on its own from now on.

Rows waiting for a stage keep the budget they had: until now every claim, crash or error, counted
against max_attempts, so their claims so far become their errors.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COUNTERS = ("errors", "crashes", "crashes_alone")


def upgrade() -> None:
    # Plain string server defaults: SQLite's ADD COLUMN takes them as they are (no table copy).
    for name in COUNTERS:
        op.add_column("recordings", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    isolated = sa.Column("isolated", sa.Boolean(), nullable=False, server_default=sa.false())
    op.add_column("recordings", isolated)
    # Statuses are stored as plain strings (native_enum=False), so literals compare on both engines.
    op.execute("UPDATE recordings SET errors = attempts WHERE status IN ('uploaded', 'transcribed')")
    op.execute(
        "UPDATE recordings SET errors = attempts - 1 "
        "WHERE status IN ('transcribing', 'cleaning') AND attempts > 0"
    )


def downgrade() -> None:
    # Not batch mode: on SQLite that copies `recordings` into a new table and drops the old one, and
    # with foreign keys on, dropping it deletes its transcripts and captions (ON DELETE CASCADE).
    for name in ("isolated", *reversed(COUNTERS)):
        op.drop_column("recordings", name)
