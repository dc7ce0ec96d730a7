"""transcript words in their own column

Per-word timings move out of `transcripts.segments` (each segment's "words") into `transcripts.words`,
one flat list in order, so readers of segments (the dataset export reads them for every row) no longer
fetch ~5 KB of word timings they throw away.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 1000  # rows read and rewritten at a time, so a big database never sits in memory

# The table as this migration knows it, not as db.models describes it later.
transcripts = sa.table(
    "transcripts",
    sa.column("id", sa.Integer()),
    sa.column("segments", sa.JSON()),
    sa.column("words", sa.JSON()),
)


def upgrade() -> None:
    # A plain string server default renders as DEFAULT '[]', which SQLite's ADD COLUMN accepts as is
    # (an expression default would make batch mode copy the whole table).
    op.add_column("transcripts", sa.Column("words", sa.JSON(), nullable=False, server_default="[]"))
    for batch in _batches(transcripts.c.segments):
        updates = []
        for row in batch:
            segments = row.segments if isinstance(row.segments, list) else []
            if not any(isinstance(s, dict) and "words" in s for s in segments):
                continue
            words = [w for s in segments if isinstance(s, dict) for w in s.get("words") or []]
            kept = [_without_words(s) for s in segments]
            updates.append({"row_id": row.id, "new_segments": kept, "new_words": words})
        _write(updates)


def downgrade() -> None:
    for batch in _batches(transcripts.c.segments, transcripts.c.words):
        updates = []
        for row in batch:
            segments = row.segments if isinstance(row.segments, list) else []
            words = row.words if isinstance(row.words, list) else []
            updates.append({"row_id": row.id, "new_segments": _with_words(segments, words)})
        _write(updates)
    # Not batch mode: on SQLite that copies the table into a new one and drops the old, and with
    # foreign keys on, dropping `transcripts` deletes its captions (ON DELETE CASCADE). SQLite has had
    # ALTER TABLE ... DROP COLUMN since 3.35.
    op.drop_column("transcripts", "words")


def _batches(*columns: Any) -> Iterator[list[Any]]:
    """The transcripts' ids and `columns`, BATCH rows at a time in id order (keyset, not OFFSET)."""
    conn = op.get_bind()
    last = 0
    while True:
        query = (
            sa.select(transcripts.c.id, *columns)
            .where(transcripts.c.id > last)
            .order_by(transcripts.c.id)
            .limit(BATCH)
        )
        rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _write(updates: list[dict[str, Any]]) -> None:
    """One executemany: each row's new segments, and its words when given."""
    if not updates:
        return
    values: dict[str, Any] = {"segments": sa.bindparam("new_segments", type_=sa.JSON())}
    if "new_words" in updates[0]:
        values["words"] = sa.bindparam("new_words", type_=sa.JSON())
    statement = transcripts.update().where(transcripts.c.id == sa.bindparam("row_id")).values(values)
    op.get_bind().execute(statement, updates)


def _without_words(segment: Any) -> Any:
    return {k: v for k, v in segment.items() if k != "words"} if isinstance(segment, dict) else segment


def _with_words(segments: list[Any], words: list[Any]) -> list[Any]:
    """Each word back in the segment whose time span holds it (words and segments are both in order).

    A word moves on to the next segment once it starts at or after that segment's start, unless it is
    a zero-length word sitting on the boundary at the end of the current one.
    """
    dicts = [s for s in segments if isinstance(s, dict)]
    buckets: list[list[Any]] = [[] for _ in dicts]
    i = 0
    for word in words:
        start = _seconds(word, "start")
        end = _seconds(word, "end")
        while i + 1 < len(dicts):
            following = _seconds(dicts[i + 1], "start")
            if start >= following and (end > following or start > _seconds(dicts[i], "end")):
                i += 1
            else:
                break
        if buckets:
            buckets[i].append(word)
    placed = iter(buckets)
    return [{**s, "words": next(placed)} if isinstance(s, dict) else s for s in segments]


def _seconds(item: Any, key: str) -> float:
    try:
        return float(item.get(key, 0.0)) if isinstance(item, dict) else 0.0
    except (TypeError, ValueError):
        return 0.0
