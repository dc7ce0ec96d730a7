"""The one JSON Lines reader of ingest and import-audio: every bad line named by number and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotate.errors import InvalidInput
from annotate.services.jsonl import count_lines, read_jsonl


def test_good_and_bad_lines_are_numbered_and_the_rest_still_counts(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(
        b"\xef\xbb\xbf"  # a byte-order mark, as spreadsheet exports write
        + b'{"image": "a.jpg"}\n'
        + b"\n"  # blank: skipped, but still numbered
        + b"{not json\n"
        + b'["a", "list"]\n'
        + b'"text"\n'
        + b'{"image": "caf\xe9.jpg"}\n'  # Latin-1, not UTF-8
        + b'{"image": "b.jpg", "tags": [1]}'  # no newline at the end
    )
    lines = list(read_jsonl(manifest))
    assert [(line.number, line.row) for line in lines if line.row is not None] == [
        (1, {"image": "a.jpg"}),
        (7, {"image": "b.jpg", "tags": [1]}),
    ]
    assert [line.error for line in lines if line.row is None] == [
        "line 3: not valid JSON (Expecting property name enclosed in double quotes, column 2)",
        "line 4: not a JSON object",
        "line 5: not a JSON object",
        "line 6: not UTF-8 text (byte 15)",
    ]
    assert count_lines(manifest) == len(lines) == 6


def test_an_unreadable_manifest_is_refused_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(InvalidInput, match=r"Cannot read manifest .*missing\.jsonl: No such file"):
        list(read_jsonl(missing))
    with pytest.raises(InvalidInput, match="Cannot read manifest"):
        list(read_jsonl(tmp_path))  # a folder
