"""Importing the `voicecap` command stays lean: heavy libraries load only in the commands that use them."""

from __future__ import annotations

import json
import subprocess
import sys

# Each of these was loaded by `import annotate.cli.main` before the CLI modules imported them lazily.
HEAVY = ["numpy", "av", "pydub", "PIL", "httpx", "uvicorn", "alembic"]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import json, sys\n"
        "import annotate.cli.main\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
