"""manifest.json: what an export holds (counts, filters, code version, a sha256 of every file), written
last so that it never describes half-written files; and the check of a directory against it."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from annotate.services.export.files import MANIFEST, sha256_of
from db.files import atomic_write


def code_version() -> dict[str, Any]:
    """The package version and, from a source checkout, the git commit (with a dirty mark)."""
    try:
        version = metadata.version("voicecap")
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = None
    repo = Path(__file__).resolve().parents[3]
    if (repo / ".git").exists():
        try:
            commit = subprocess.run(
                ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=40"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"voicecap": version, "git": commit}


def file_entry(path: Path, fmt: str, split: str | None, rows: int, size: int, digest: str) -> dict[str, Any]:
    """One file's line in the manifest (media.sha256 has no split)."""
    entry: dict[str, Any] = {"path": path.name, "format": fmt}
    if split is not None:
        entry["split"] = split
    return {**entry, "rows": rows, "bytes": size, "sha256": digest}


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    with atomic_write(out_dir / MANIFEST) as handle:
        json.dump(manifest, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def verify_export(out_dir: Path) -> list[str]:
    """Problems with an export directory against its manifest (empty when every file checks out)."""
    manifest_path = Path(out_dir) / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing: the export did not finish."]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = []
    for entry in manifest["files"]:
        path = Path(out_dir) / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
        elif sha256_of(path) != entry["sha256"]:
            problems.append(f"{entry['path']} does not match its sha256")
    return problems
