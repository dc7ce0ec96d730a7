"""pointing (narrate and point modes) and per-project languages

- `projects`: `mode` (describe | narrate | point), `labels` (what to point at), `interface_language`
  (the annotator page's strings), `caption_language` (write captions in another language than spoken).
- `images`: `labels`, an image's own labels from the ingest manifest.
- `traces`: the pointer's path while a take was recorded, one row per recording.
- `point_sets`: a take's points, versioned (1 = the annotator's, then each reviewer correction).
- `pointing_alignments`: per transcript, words to trace samples and points to spoken phrases.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 11:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.add_column("projects", sa.Column("caption_language", sa.String(16), nullable=True))
    op.add_column(
        "projects", sa.Column("interface_language", sa.String(16), nullable=False, server_default="en")
    )
    op.add_column("projects", sa.Column("mode", sa.String(20), nullable=False, server_default="describe"))
    op.add_column("projects", sa.Column("labels", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column("images", sa.Column("labels", sa.JSON(), nullable=True))
    op.create_table(
        "traces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "recording_id",
            sa.Integer(),
            sa.ForeignKey("recordings.id", ondelete="CASCADE", name="fk_traces_recording_id_recordings"),
            nullable=False,
        ),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traces")),
        sa.UniqueConstraint("recording_id", name=op.f("uq_traces_recording_id")),
    )
    op.create_table(
        "point_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "recording_id",
            sa.Integer(),
            sa.ForeignKey("recordings.id", ondelete="CASCADE", name="fk_point_sets_recording_id_recordings"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("absent_labels", sa.JSON(), nullable=False),
        sa.Column(
            "created_by",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_point_sets_created_by_users"),
            nullable=True,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_sets")),
        sa.UniqueConstraint("recording_id", "version", name=op.f("uq_point_sets_recording_version")),
    )
    op.create_table(
        "pointing_alignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "transcript_id",
            sa.Integer(),
            sa.ForeignKey(
                "transcripts.id", ondelete="CASCADE", name="fk_pointing_alignments_transcript_id_transcripts"
            ),
            nullable=False,
        ),
        sa.Column(
            "point_set_id",
            sa.Integer(),
            sa.ForeignKey(
                "point_sets.id", ondelete="CASCADE", name="fk_pointing_alignments_point_set_id_point_sets"
            ),
            nullable=True,
        ),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("count_mismatch", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pointing_alignments")),
        sa.UniqueConstraint("transcript_id", name=op.f("uq_pointing_alignments_transcript_id")),
    )


def downgrade() -> None:
    op.drop_table("pointing_alignments")
    op.drop_table("point_sets")
    op.drop_table("traces")
    # Not batch mode (see 0006): native DROP COLUMN keeps the rows that reference these tables.
    op.drop_column("images", "labels")
    for name in ("labels", "mode", "interface_language", "caption_language"):
        op.drop_column("projects", name)
