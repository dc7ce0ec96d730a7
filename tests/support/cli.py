"""Run the real `voicecap` CLI in a subprocess, with the test's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


def run_cli(
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "annotate.cli.main", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    if check and result.returncode != 0:
        command = " ".join(args)
        raise AssertionError(
            f"voicecap {command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def run_json(*args: str, **kwargs: Any) -> Any:
    return json.loads(run_cli(*args, "--json", **kwargs).stdout)
