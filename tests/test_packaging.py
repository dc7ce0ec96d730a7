"""A wheel install carries everything the app needs at run time, not only the Python modules."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_contains_web_assets_prompts_and_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("voicecap-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    web_files = {p.relative_to(REPO).as_posix() for p in (REPO / "web").rglob("*") if p.is_file()}
    web_files = {n for n in web_files if "__pycache__" not in n}
    assert web_files - names == set()
    assert {
        "transcribe/clean/prompts/caption-v1.txt",
        "transcribe/clean/prompts/caption-v2.txt",
        "transcribe/clean/prompts/merge-v2.txt",
        "transcribe/clean/languages/es.toml",
        "db/migrations/script.py.mako",
        "db/migrations/versions/0001_initial_schema.py",
    } <= names
    assert "annotate/cli/main.py" in names
    # The export package and the module its part builder processes run (python -m …part_builder).
    assert {"annotate/services/export/__init__.py", "annotate/services/export/part_builder.py"} <= names
