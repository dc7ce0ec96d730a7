"""Parallel export: part builder processes build runs of the rows into part files; the export appends them.

The selected images are cut into runs of ids (selection.plan_parts), a few per builder so the appending
can keep up with the building and little is left to append when the last run is done. Builder b builds
runs b, b + builders, b + 2·builders, … in order, so the runs finish roughly in id order. The export
process builds no rows itself: it waits for run 0, appends its part files to the finished files (hashing
them on the way), then run 1, and so on. The output is the same bytes whatever the number of builders.

A builder is `python -m annotate.services.export.part_builder` (PART_BUILDER), a fresh interpreter that
imports only what rows need. It reads its PartJob as JSON on stdin (the database URL stays off the
command line) and reports on stdout, one JSON object a line: `{"rows": n}` per window for the progress
bar, `{"part": i, "counts": …, "totals": …}` when run i's files are complete, `{"error": message}` before
it exits non-zero. If the export process dies, the builder's next report hits a closed pipe and it exits
too; its part files end in `.tmp`, which the next export sweeps.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from annotate.errors import InvalidInput
from annotate.services.export.selection import SPLITS, ExportFilter, SplitSpec

Progress = Callable[[int], None]
PART_BUILDER = "annotate.services.export.part_builder"


@dataclass(frozen=True)
class Run:
    """Image ids (after_id, upto_id] of one part; upto_id None = to the end."""

    index: int
    after_id: int
    upto_id: int | None


@dataclass(frozen=True)
class PartJob:
    """What one part builder builds: its runs, and how every row is built and written."""

    database_url: str
    project_name: str
    blob_root: str  # the blob store: a folder or an s3:// URL
    out_dir: str
    filter: dict[str, Any]
    split: dict[str, int]
    formats: list[str]
    window: int
    public_base_url: str
    runs: list[Run]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PartJob:
        data = json.loads(text)
        data["runs"] = [Run(**run) for run in data["runs"]]
        return cls(**data)

    def export_filter(self) -> ExportFilter:
        return ExportFilter.from_dict(self.filter)

    def split_spec(self) -> SplitSpec:
        return SplitSpec(**self.split)


def part_path(out_dir: Path, split: str, fmt: str, index: int) -> Path:
    return out_dir / f"{split}.{fmt}.part{index}.tmp"


def build_run(
    job: PartJob, run: Run, engine: Any, builder: Any, report: Callable[[dict[str, Any]], None]
) -> None:
    """Write one run's rows to its part files (one per split and format), then report it complete."""
    from annotate.services.export.rows import TOTALS, iter_rows, write_rows

    out_dir = Path(job.out_dir)
    jsonl = (
        {s: part_path(out_dir, s, "jsonl", run.index).open("wb", buffering=1024 * 1024) for s in SPLITS}
        if "jsonl" in job.formats
        else {}
    )
    parquet: dict[str, Any] = {}
    if "parquet" in job.formats:
        from annotate.services.export.parquet import ParquetSplit

        parquet = {s: ParquetSplit(part_path(out_dir, s, "parquet", run.index), temp=False) for s in SPLITS}
    counts = dict.fromkeys(SPLITS, 0)
    totals = dict.fromkeys(TOTALS, 0)
    try:
        for rows in iter_rows(engine, builder, job.export_filter(), job.window, run.after_id, run.upto_id):
            write_rows(rows, jsonl, parquet, counts, totals)
            report({"rows": len(rows)})
        for writer in parquet.values():
            writer.close()
    finally:
        for handle in jsonl.values():
            handle.close()
    report({"part": run.index, "counts": counts, "totals": totals})


class PartBuildFailed(RuntimeError):
    """A part builder process of a parallel export stopped before finishing its runs."""


RunCounts = tuple[dict[str, int], dict[str, int]]  # a run's rows per split, and its totals


class PartBuilders:
    """The part builder processes of one parallel export, and the reports they send."""

    def __init__(self, jobs: list[PartJob]) -> None:
        self.events: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        self.finished: dict[int, RunCounts] = {}
        self.ended: set[int] = set()  # builders whose reports have all been read
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stderr: list[IO[bytes]] = []
        self.readers: list[threading.Thread] = []
        try:
            for number, job in enumerate(jobs):
                self._start(number, job)
        except BaseException:
            self.close()
            raise

    def _start(self, number: int, job: PartJob) -> None:
        errors = tempfile.TemporaryFile()  # noqa: SIM115 - the builder writes it for its life; close() closes it
        self.stderr.append(errors)
        process = subprocess.Popen(
            [sys.executable, "-m", PART_BUILDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.processes.append(process)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(job.to_json().encode())
        process.stdin.close()
        reader = threading.Thread(target=self._read, args=(number, process.stdout), daemon=True)
        reader.start()
        self.readers.append(reader)

    def _read(self, number: int, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                self.events.put((number, json.loads(line)))
            except ValueError:
                continue  # not a report (a library printed something): ignore it
        self.events.put((number, None))

    def wait_for(self, index: int, progress: Progress | None) -> RunCounts:
        """Block until run `index` is complete, passing row counts to `progress`; its counts and totals."""
        while index not in self.finished:
            if len(self.ended) == len(self.processes):
                raise PartBuildFailed(f"every part builder exited, and none reported run {index}")
            number, event = self.events.get()
            if event is None:
                self.ended.add(number)
                self._check_exit(number)
            elif "rows" in event:
                if progress is not None:
                    progress(event["rows"])
            elif "part" in event:
                self.finished[event["part"]] = (event["counts"], event["totals"])
            elif "error" in event:
                self.processes[number].wait()
                if event.get("invalid_input"):
                    raise InvalidInput(event["error"])
                raise PartBuildFailed(f"part builder {number + 1} failed: {event['error']}")
        return self.finished.pop(index)

    def _check_exit(self, number: int) -> None:
        code = self.processes[number].wait()
        if code != 0:
            errors = self.stderr[number]
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
            raise PartBuildFailed(f"part builder {number + 1} exited with {code}: " + " | ".join(tail))

    def finish(self) -> None:
        """After the last run: every builder exits, and cleanly."""
        for number, process in enumerate(self.processes):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise PartBuildFailed(f"part builder {number + 1} did not exit after its last run") from None
            self._check_exit(number)

    def close(self) -> None:
        """Stop every builder still running (after an error) and reap them all."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for reader in self.readers:
            reader.join(timeout=5)
        for errors in self.stderr:
            errors.close()
