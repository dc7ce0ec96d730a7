"""Render the settings as a Markdown table for the README (`python -m db.settings_doc`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from db.settings import Settings

MARKER_START = "<!-- settings-table -->"
MARKER_END = "<!-- /settings-table -->"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default in ("", None) else str(default)
        if isinstance(default, Path):
            shown = default.as_posix()
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `VOICECAP_{name.upper()}` | `{shown}` | {description} |".replace("``", ""))
    return "\n".join(rows)


def render_into(readme: str) -> str:
    block = f"{MARKER_START}\n{settings_table()}\n{MARKER_END}"
    pattern = re.compile(re.escape(MARKER_START) + r"(.*?" + re.escape(MARKER_END) + r")?", re.S)
    return pattern.sub(lambda _: block, readme, count=1)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(render_into(path.read_text()))
