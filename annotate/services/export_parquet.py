"""Parquet files of an export: the same rows as the JSONL, under a fixed schema (types never depend on
which rows come first, so `datasets` and pandas always load them). pyarrow is imported only here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from annotate.services.export_build import RowBuilder, iter_rows
from annotate.services.export_rows import ExportFilter

PARQUET_BATCH = 5000  # rows buffered per split before a Parquet row group is written

_SEGMENT = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("text", pa.string())])
_CAPTION = pa.struct(
    [
        ("id", pa.int64()),
        ("kind", pa.string()),
        ("status", pa.string()),
        ("chosen", pa.bool_()),
        ("text", pa.string()),
        ("cleaner", pa.string()),
        ("model", pa.string()),
        ("prompt_version", pa.string()),
        ("recording_id", pa.int64()),
        ("transcript_id", pa.int64()),
        ("parent_id", pa.int64()),
        ("faithfulness", pa.float64()),
        ("flagged", pa.bool_()),
        ("flags", pa.list_(pa.string())),
        ("created_at", pa.string()),
    ]
)
_RECORDING = pa.struct(
    [
        ("id", pa.int64()),
        ("annotator", pa.string()),
        ("seconds", pa.float64()),
        ("language", pa.string()),
        ("transcript", pa.string()),
        ("segments", pa.list_(_SEGMENT)),
        ("engine", pa.string()),
        ("model", pa.string()),
        ("audio_path", pa.string()),
        ("content_type", pa.string()),
        ("created_at", pa.string()),
    ]
)
_REVIEW = pa.struct(
    [
        ("caption_id", pa.int64()),
        ("decision", pa.string()),
        ("reviewer", pa.string()),
        ("reason", pa.string()),
        ("source", pa.string()),
        ("created_at", pa.string()),
    ]
)
ROW_SCHEMA = pa.schema(
    [
        ("image_url", pa.string()),
        ("caption", pa.string()),
        ("transcripts", pa.list_(pa.string())),
        ("image_path", pa.string()),
        ("image_id", pa.int64()),
        ("sha256", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("split", pa.string()),
        ("project", pa.string()),
        ("caption_id", pa.int64()),
        ("captions", pa.list_(_CAPTION)),
        ("recordings", pa.list_(_RECORDING)),
        ("review", _REVIEW),
    ]
)


class ParquetSplit:
    """One split's Parquet file, written in row groups from buffered rows."""

    def __init__(self, final: Path, temp: bool = True) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + ".tmp") if temp else final
        self.schema = ROW_SCHEMA
        self.writer = pq.ParquetWriter(self.tmp, ROW_SCHEMA, compression="zstd")
        self.buffer: list[dict[str, Any]] = []
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= PARQUET_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
            self.rows += len(self.buffer)
            self.buffer = []

    def append_file(self, path: Path) -> None:
        """Append a worker's part file, row group by row group."""
        self.flush()
        part = pq.ParquetFile(path)
        for group in range(part.num_row_groups):
            table = part.read_row_group(group)
            self.writer.write_table(table)
            self.rows += table.num_rows
        part.close()
        path.unlink()

    def close(self) -> None:
        self.flush()
        self.writer.close()

    def discard(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write_parquet(
    engine: Engine, builder: RowBuilder, flt: ExportFilter, path: Path, window: int = 1000
) -> int:
    """All splits in one Parquet file (each row carries its `split`), written under a temp name; rows."""
    writer = ParquetSplit(Path(path))
    try:
        for rows in iter_rows(engine, builder, flt, window):
            for row in rows:
                writer.add(row)
        writer.close()
    except BaseException:
        writer.discard()
        raise
    os.replace(writer.tmp, writer.final)
    return writer.rows
