"""The export's field tables: the JSONL keys and the Parquet schema come from them, and a caption field
added to CAPTIONS (one line, nowhere else) reaches the SELECT, the JSONL rows and the Parquet files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from annotate.services.export import ExportFilter, ExportOptions, export_dataset
from annotate.services.export.fields import CAPTIONS, RECORDINGS, REVIEWS, ROW, Field, FieldTable
from annotate.services.export.parquet import ROW_SCHEMA
from db.models import Caption
from tests.test_export import read_lines, seed_export

REPO = Path(__file__).resolve().parent.parent
FIELDS = "annotate/services/export/fields.py"
TEXT_LINE = '    Field("text", STRING, Caption.text),\n'


def _jsonl_rows(out: Path, manifest: dict) -> list[dict]:
    return [row for f in manifest["files"] if f["format"] == "jsonl" for row in read_lines(out / f["path"])]


def _struct_names(kind: pa.DataType) -> list[str]:
    struct = kind.value_type if pa.types.is_list(kind) else kind
    return [struct.field(i).name for i in range(struct.num_fields)]


def test_the_jsonl_keys_and_the_parquet_schema_come_from_the_field_tables(
    engine, blobs, session, tmp_path
) -> None:
    seeded = seed_export(session, blobs, extra_approved=0)
    out = tmp_path / "export"
    options = ExportOptions(
        filter=ExportFilter(project_id=seeded.project.id, state="all"), formats=("jsonl", "parquet")
    )
    manifest = export_dataset(engine, blobs, seeded.project, options, out)
    rows = _jsonl_rows(out, manifest)
    assert any(r["captions"] and r["recordings"] and r["review"] for r in rows)
    for row in rows:
        assert list(row) == list(ROW.names)
        assert all(list(c) == list(CAPTIONS.names) for c in row["captions"])
        assert all(list(r) == list(RECORDINGS.names) for r in row["recordings"])
        assert row["review"] is None or list(row["review"]) == list(REVIEWS.names)
    # Internal fields (what grouping and media copies need) stay out of the rows.
    assert "image_id" not in CAPTIONS.names and "original_key" not in RECORDINGS.names

    for entry in manifest["files"]:
        if entry["format"] == "parquet":
            schema = pq.read_schema(out / entry["path"])
            assert schema.names == list(ROW.names) and schema.equals(ROW_SCHEMA)
            assert _struct_names(schema.field("captions").type) == list(CAPTIONS.names)
            assert _struct_names(schema.field("recordings").type) == list(RECORDINGS.names)
            assert _struct_names(schema.field("review").type) == list(REVIEWS.names)


def test_a_field_needs_a_name_and_a_column_or_a_type() -> None:
    with pytest.raises(ValueError, match=r"Caption\.nothing"):
        FieldTable("Caption", Field("nothing", None))
    with pytest.raises(ValueError, match="not a name"):
        FieldTable("Caption", Field("not a name", "string", Caption.text))


def test_one_line_in_captions_adds_a_field_to_the_select_the_jsonl_and_the_parquet(
    engine, blobs, session, tmp_path
) -> None:
    """Copy the package, add `word_count` to CAPTIONS in fields.py only, and export with the copy: on two
    part builders, so the field also travels through the parallel path."""
    seeded = seed_export(session, blobs, extra_approved=0)
    source = tmp_path / "src"
    shutil.copytree(REPO / "annotate", source / "annotate", ignore=shutil.ignore_patterns("__pycache__"))
    fields = source / FIELDS
    text = fields.read_text()
    assert text.count(TEXT_LINE) == 1
    added = '    Field("word_count", INT64, Caption.word_count),\n'
    fields.write_text(text.replace(TEXT_LINE, TEXT_LINE + added))

    out = tmp_path / "export"
    script = (
        "import json, sys\n"
        "from sqlalchemy.orm import Session\n"
        "import annotate.services.export as export\n"
        "assert export.__file__.startswith(sys.argv[1]), export.__file__\n"
        "from db.blobstore import BlobStore\n"
        "from db.models import Project\n"
        "from db.session import make_engine\n"
        "engine = make_engine(sys.argv[2])\n"
        "with Session(engine) as session:\n"
        "    project = session.get(Project, int(sys.argv[3]))\n"
        "flt = export.ExportFilter(project_id=project.id, state='captioned')\n"
        "options = export.ExportOptions(filter=flt, formats=('jsonl', 'parquet'), workers=2)\n"
        "manifest = export.export_dataset(engine, BlobStore(sys.argv[4]), project, options, sys.argv[5])\n"
        "print(json.dumps(manifest))\n"
    )
    url = engine.url.render_as_string(hide_password=False)
    args = [str(source), url, str(seeded.project.id), str(blobs.root), str(out)]
    # Run from the copy, so it (not this checkout) is what the export and its part builders import.
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=source,
        env={**os.environ, "PYTHONPATH": f"{source}:{REPO}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)

    word_counts = dict(session.execute(select(Caption.id, Caption.word_count)).all())
    names = list(CAPTIONS.names)
    names.insert(names.index("text") + 1, "word_count")
    rows = _jsonl_rows(out, manifest)
    captions = [c for row in rows for c in row["captions"]]
    assert len(rows) == manifest["counts"]["images"] > 1 and captions
    for caption in captions:
        assert list(caption) == names
        assert caption["word_count"] == word_counts[caption["id"]] > 0
    parquet = [out / f["path"] for f in manifest["files"] if f["format"] == "parquet"]
    assert parquet
    for path in parquet:
        table = pq.read_table(path)
        assert _struct_names(table.schema.field("captions").type) == names
        assert table.schema.field("captions").type.value_type.field("word_count").type == pa.int64()
        for row_captions in table.column("captions").to_pylist():
            assert all(c["word_count"] == word_counts[c["id"]] for c in row_captions)
