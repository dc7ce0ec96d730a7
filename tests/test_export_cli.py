"""`voicecap export` through the real CLI: files, manifest, errors, and a SIGKILL mid-export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from tests.support.bulk_seed import bulk_captioned
from tests.support.cli import run_cli, run_json
from tests.test_export import read_lines, seed_export

FINISHED = {"train.jsonl", "validation.jsonl", "test.jsonl", "train.parquet", "manifest.json"}


def test_export_command_writes_files_and_manifest(session, blobs, tmp_path) -> None:
    seeded = seed_export(session, blobs)
    out = tmp_path / "harbour-v1"
    manifest = run_json("export", "Harbour", "--out", str(out), "--format", "jsonl", "--format", "parquet")
    assert manifest["counts"]["images"] == 11 and manifest["project"]["name"] == "Harbour"
    assert manifest["formats"] == ["jsonl", "parquet"]
    written = {f["path"] for f in manifest["files"]}
    assert "train.jsonl" in written and "train.parquet" in written
    assert written | {"manifest.json"} == {p.name for p in out.iterdir()}
    rows = [row for f in manifest["files"] if f["format"] == "jsonl" for row in read_lines(out / f["path"])]
    assert len(rows) == 11 and {r["project"] for r in rows} == {"Harbour"}
    assert pd.read_parquet(out / "train.parquet")["caption"].notna().all()

    # Without --json: a table and a summary, the progress bar on stderr.
    again = run_cli(
        "export", str(seeded.project.id), "--out", str(tmp_path / "by-id"), "--state", "captioned"
    )
    assert "Exported 12 images" in again.stdout and "manifest:" in again.stdout

    # A second export into the same directory needs --overwrite.
    refused = run_cli("export", "Harbour", "--out", str(out), check=False)
    assert refused.returncode == 1 and "--overwrite" in refused.stderr
    replaced = run_json(
        "export", "Harbour", "--out", str(out), "--overwrite", "--state", "all", "--split", "100,0,0"
    )
    assert replaced["counts"]["images"] == 14
    assert [f["path"] for f in replaced["files"]] == ["train.jsonl", "README.md"]  # the card, written last
    assert {p.name for p in out.iterdir()} == {"train.jsonl", "README.md", "manifest.json"}


def test_export_command_reports_bad_input(session, blobs, tmp_path) -> None:
    seed_export(session, blobs, extra_approved=0)
    cases = [
        (["Nowhere"], "No project named 'Nowhere'"),
        (["Harbour", "--split", "80,30,10"], "add up to 100"),
        (["Harbour", "--since", "last week"], "not an ISO date"),
        (["Harbour", "--format", "csv"], "Unknown format csv"),
    ]
    for args, message in cases:
        result = run_cli("export", *args, "--out", str(tmp_path / "x"), check=False)
        assert result.returncode != 0, args
        assert message in " ".join(result.stderr.split()), (args, result.stderr)


def test_sigkill_mid_export_leaves_no_file_under_a_finished_name(session, blobs, tmp_path) -> None:
    seeded = seed_export(session, blobs, extra_approved=0)
    bulk_captioned(session, seeded.project, seeded.annotators[0], 40_000)
    out = tmp_path / "export"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "annotate.cli.main",
            "export",
            "Harbour",
            "--out",
            str(out),
            "--format",
            "jsonl",
            "--format",
            "parquet",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 120
        tmp = out / "train.jsonl.tmp"
        # Kill it once rows are being written: well into the export, before it can finish.
        while not (tmp.exists() and tmp.stat().st_size > 100_000):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    left = {p.name for p in out.iterdir()}
    assert not left & FINISHED, left
    assert all(name.endswith(".tmp") for name in left), left

    # Run again: temp files of the dead run are swept and the export completes and verifies.
    manifest = run_json("export", "Harbour", "--out", str(out), "--format", "jsonl", "--format", "parquet")
    assert manifest["counts"]["images"] == 40_000 + 5
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    lines = sum(1 for f in manifest["files"] if f["format"] == "jsonl" for _ in (out / f["path"]).open())
    assert lines == 40_005
    first = json.loads((out / "train.jsonl").open().readline())
    assert set(first) >= {"image_url", "caption", "transcripts", "sha256", "recordings", "review"}
