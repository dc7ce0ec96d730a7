"""transcript confidence figures

`transcripts.confidence`: how sure the recogniser was (share of low-probability words, mean
log-probability, whether that makes the transcript unsure and why), the language it heard, and, when
the confidence cascade re-transcribed a take, both transcripts with the model and reason of the one
kept. Older rows get {} (nothing measured).

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain string default: SQLite's ADD COLUMN takes it as is, without copying the table.
    op.add_column("transcripts", sa.Column("confidence", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    # Not batch mode: on SQLite that would rebuild `transcripts`, and dropping the old table deletes
    # its captions (ON DELETE CASCADE). SQLite has ALTER TABLE ... DROP COLUMN since 3.35.
    op.drop_column("transcripts", "confidence")
