"""The one JSON Lines reader for manifests (`voicecap ingest` and `voicecap import-audio`).

A manifest is read line by line in binary and each line decoded on its own, so one bad line (broken
JSON, not UTF-8, not an object) is reported with its number and the rest of the file still counts.
Blank lines are skipped; a byte-order mark in front of the first line is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotate.errors import InvalidInput

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class JsonlLine:
    """One non-blank line: `row` when it holds a JSON object, else `problem` says what is wrong."""

    number: int
    row: dict[str, Any] | None = None
    problem: str | None = None

    @property
    def error(self) -> str:
        """The one wording of a bad line: "line 3: not valid JSON (…)"."""
        return f"line {self.number}: {self.problem}"


def read_jsonl(path: Path) -> Iterator[JsonlLine]:
    """The lines of `path`, numbered from 1. An unreadable file raises InvalidInput before any line."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InvalidInput(f"Cannot read manifest {path}: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if raw.strip():
                yield parse_line(number, raw)


def parse_line(number: int, raw: bytes) -> JsonlLine:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return JsonlLine(number, problem=f"not UTF-8 text (byte {exc.start + 1})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return JsonlLine(number, problem=f"not valid JSON ({exc.msg}, column {exc.colno})")
    if not isinstance(value, dict):
        return JsonlLine(number, problem="not a JSON object")
    return JsonlLine(number, row=value)


def count_lines(path: Path) -> int:
    """How many lines read_jsonl will yield (for a progress bar)."""
    with path.open("rb") as handle:
        return sum(1 for raw in handle if raw.strip())
