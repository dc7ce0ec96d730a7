"""Dataset export: JSONL, Parquet, a manifest, and the rows Label Studio and the download endpoint use.

Import from here: this is the export's one public entry (the CLI, the HTTP route, Label Studio sync and
the tests use only these names). The modules, in the order a row passes through them:

- selection.py: which images (ExportFilter, SplitSpec) and the SQL that selects, counts and pages them.
- fields.py: what a row holds, as tables of fields; to export another caption field, add it there only.
- records.py: reads a window of images with their captions, recordings and reviews (ImageRecord).
- rows.py: RowBuilder turns a record into a JSON row; JSONL lines, counting, media copies.
- parquet.py: the same rows under a fixed Parquet schema.
- files.py and manifest.py: the export directory, its crash-safe files and manifest.json.
- parts.py and part_builder.py: a large export built by several processes into parts, appended in order.
- dataset.py: export_dataset, which runs all of the above.

Why they are apart: a part builder is a fresh process (`python -m annotate.services.export.part_builder`)
that should load only what building rows needs, so the row modules import neither the CLI nor the web
app; and pyarrow (about 80 MB once imported) is imported only by parquet.py, which is itself imported only
when Parquet is asked for.
"""

from annotate.services.export.dataset import ExportOptions, export_dataset, write_parquet
from annotate.services.export.files import FORMATS, zip_directory
from annotate.services.export.manifest import verify_export
from annotate.services.export.records import ImageRecord, iter_records
from annotate.services.export.rows import RowBuilder, stream_jsonl
from annotate.services.export.selection import STATES, ExportFilter, SplitSpec, as_utc, parse_when

__all__ = [
    "FORMATS",
    "STATES",
    "ExportFilter",
    "ExportOptions",
    "ImageRecord",
    "RowBuilder",
    "SplitSpec",
    "as_utc",
    "export_dataset",
    "iter_records",
    "parse_when",
    "stream_jsonl",
    "verify_export",
    "write_parquet",
    "zip_directory",
]
