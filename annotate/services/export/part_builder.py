"""`python -m annotate.services.export.part_builder`: one part builder process of a parallel export.

Started by parts.PartBuilders, never by hand: it reads a PartJob as JSON on stdin, builds its runs into
part files and reports on stdout (the protocol is in parts.py). Nothing imports this module, so running
it does not load it twice; it imports what rows need and no more (not the CLI, not the web app, and
pyarrow only for a Parquet job).
"""

from __future__ import annotations

import gc
import json
import sys
from typing import Any

from annotate.errors import InvalidInput, VoicecapError
from annotate.services.export.parts import PartJob, build_run
from annotate.services.export.rows import PARSING_FORMATS, RowBuilder
from db.blobstore import open_blobstore
from db.session import make_engine


def report(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main() -> int:
    """Build the runs of the job on stdin, reporting on stdout; the exit status."""
    gc.freeze()  # as in `voicecap export`: spare full collections the imported modules' objects
    job = PartJob.from_json(sys.stdin.read())
    engine = make_engine(job.database_url)
    builder = RowBuilder(
        job.project_name,
        open_blobstore(job.blob_root),
        job.split_spec(),
        job.public_base_url,
        raw_json=not PARSING_FORMATS & set(job.formats),
    )
    try:
        for run in job.runs:
            build_run(job, run, engine, builder, report)
    except BrokenPipeError:
        return 1  # the export process is gone: nobody wants these rows
    except VoicecapError as exc:
        report({"error": exc.message, "invalid_input": isinstance(exc, InvalidInput)})
        return 1
    except Exception as exc:
        report({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
