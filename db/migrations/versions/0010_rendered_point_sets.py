"""point sets stored as an export writes them

- `point_sets.export_groups`: the set's PixMo-Points groups (one per label, "none" labels with count 0) as
  compact JSON; `point_sets.points_text`: its Molmo point text, one line per labelled group with points.
  Written with every new set (export/pointing.point_set_export), so a large export passes them through
  instead of rebuilding them per take; NULL means not rendered, and the export renders such a set itself.

Existing sets are rendered here, in batches. The rendering is a frozen copy of export/pointing.py's as it
was at this revision (tests/test_migration_0010.py checks the two agree).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from html import escape
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 2000

try:
    from orjson import dumps as _orjson_dumps

    def _dumps(value: Any) -> str:
        return _orjson_dumps(value).decode()

except ImportError:  # pragma: no cover - orjson is optional
    import json

    def _dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _molmo_line(coordinates: list[tuple[float, float]], label: str) -> str:
    alt, text = escape(label), escape(label, quote=False)
    if len(coordinates) == 1:
        x, y = coordinates[0]
        return f'<point x="{x:0.1f}" y="{y:0.1f}" alt="{alt}">{text}</point>'
    joined = " ".join(
        f'x{i}="{x:0.1f}" y{i}="{y:0.1f}"' for i, (x, y) in enumerate(sorted(coordinates), start=1)
    )
    return f'<points {joined} alt="{alt}">{text}</points>'


def render(points: list[Any], absent: list[Any], recording_id: int) -> tuple[str, str | None]:
    """(export_groups, points_text) of one point set."""
    by_label: dict[Any, list[tuple[float, float]]] = {}
    for point in points:
        by_label.setdefault(point.get("label"), []).append(
            (round(point["x"] * 100.0, 1), round(point["y"] * 100.0, 1))
        )
    groups, lines = [], []
    for label, coordinates in by_label.items():
        groups.append(
            {
                "label": label,
                "points": [{"x": x, "y": y} for x, y in coordinates],
                "count": len(coordinates),
                "collection_method": "narrate" if label is None else "pointing",
                "recording_id": recording_id,
            }
        )
        if label is not None:
            lines.append(_molmo_line(coordinates, label))
    for label in absent:
        if label not in by_label:
            by_label[label] = []
            groups.append(
                {
                    "label": label,
                    "points": [],
                    "count": 0,
                    "collection_method": "pointing",
                    "recording_id": recording_id,
                }
            )
    return _dumps(groups), "\n".join(lines) if lines else None


def upgrade() -> None:
    op.add_column("point_sets", sa.Column("export_groups", sa.Text(), nullable=True))
    op.add_column("point_sets", sa.Column("points_text", sa.Text(), nullable=True))
    point_sets = sa.table(
        "point_sets",
        sa.column("id", sa.Integer),
        sa.column("recording_id", sa.Integer),
        sa.column("points", sa.JSON),
        sa.column("absent_labels", sa.JSON),
        sa.column("export_groups", sa.Text),
        sa.column("points_text", sa.Text),
    )
    read = (
        sa.select(point_sets.c.id, point_sets.c.recording_id, point_sets.c.points, point_sets.c.absent_labels)
        .where(point_sets.c.id > sa.bindparam("last"))
        .order_by(point_sets.c.id)
        .limit(BATCH)
    )
    write = (
        point_sets.update()
        .where(point_sets.c.id == sa.bindparam("set_id"))
        .values(export_groups=sa.bindparam("groups"), points_text=sa.bindparam("text"))
    )
    conn = op.get_bind()
    last = 0
    while True:
        batch = conn.execute(read, {"last": last}).all()
        if not batch:
            break
        values = []
        for set_id, recording_id, points, absent in batch:
            groups, text = render(points or [], absent or [], recording_id)
            values.append({"set_id": set_id, "groups": groups, "text": text})
        conn.execute(write, values)
        last = batch[-1][0]


def downgrade() -> None:
    # Not batch mode (see 0006): native DROP COLUMN.
    op.drop_column("point_sets", "points_text")
    op.drop_column("point_sets", "export_groups")
