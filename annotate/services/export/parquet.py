"""Parquet files of an export: the same rows as the JSONL, under a fixed schema made from fields.ROW (types
never depend on which rows come first, so `datasets` and pandas always load them).

pyarrow is imported only here, and this module only when Parquet is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from annotate.services.export.fields import ROW, ListOf, ParquetType, Struct
from annotate.services.export.files import sha256_of
from annotate.services.export.rows import RowBuilder, iter_rows
from annotate.services.export.selection import ExportFilter
from db.files import publish

PARQUET_BATCH = 5000  # rows buffered per split before a Parquet row group is written

_SCALARS = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(), "string": pa.string()}


def arrow_type(kind: ParquetType) -> pa.DataType:
    """The pyarrow type for a type named in fields.py."""
    if isinstance(kind, ListOf):
        return pa.list_(arrow_type(kind.item))
    if isinstance(kind, Struct):
        return pa.struct([(name, arrow_type(item)) for name, item in kind.fields])
    return _SCALARS[kind]


def schema_of(struct: Struct) -> pa.Schema:
    return pa.schema([(name, arrow_type(kind)) for name, kind in struct.fields])


ROW_SCHEMA = schema_of(ROW)


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


class ParquetSplit:
    """One split's Parquet file, written in row groups from buffered rows."""

    def __init__(self, final: Path, temp: bool = True, struct: Struct = ROW) -> None:
        self.final = final
        self.tmp = final.with_name(final.name + ".tmp") if temp else final
        self.schema = ROW_SCHEMA if struct is ROW else schema_of(struct)
        self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
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
        """Append a part builder's part file, row group by row group."""
        self.flush()
        part = pq.ParquetFile(path)
        for group in range(part.num_row_groups):
            table = part.read_row_group(group)
            self.writer.write_table(table)
            self.rows += table.num_rows
        part.close()
        path.unlink()

    def close(self) -> None:
        """Finish the file; one that will get a finished name is made durable first (a part is not)."""
        self.flush()
        self.writer.close()
        if self.tmp != self.final:
            fsync_file(self.tmp)

    def sha256(self) -> str:
        return sha256_of(self.tmp)

    def publish(self) -> None:
        """Give the closed (fsynced) file its final name."""
        publish(self.tmp, self.final)

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
    writer.publish()
    return writer.rows
