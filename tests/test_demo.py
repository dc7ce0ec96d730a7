"""`voicecap demo`: the README's first command, end to end on SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.cli import run_json
from tests.support.server import free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "images"


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICECAP_")}
    env["HOME"] = str(tmp_path)
    return env


def test_demo_setup_is_idempotent_and_prints_logins(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    env = _clean_env(tmp_path)
    first = run_json("demo", "--dir", str(demo_dir), "--setup-only", env=env)
    n_images = len([p for p in EXAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}])
    assert first["images_added"] == n_images == first["images"]
    assert set(first["logins"]) == {"demo-annotator", "demo-lead"}
    second = run_json("demo", "--dir", str(demo_dir), "--setup-only", env=env)
    assert second["images_added"] == 0 and second["images"] == n_images
    assert second["logins"]["demo-lead"]["password"] != first["logins"]["demo-lead"]["password"]
    assert (demo_dir / "voicecap.db").exists()


def test_demo_serves_the_app_runs_a_worker_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "annotate.cli.main",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
        ],
        env=_clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "demo did not start serving"
            time.sleep(0.5)
        login_page = httpx.get(f"http://127.0.0.1:{port}/login")
        assert login_page.status_code == 200 and "<html" in login_page.text.lower()
        # Ctrl-C reaches the whole foreground process group: the app and its worker.
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output
    assert "demo-annotator" in output and "Worker started" in output and "Demo stopped" in output
    leftover = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "worker process left running after Ctrl-C"


def test_demo_point_mode_makes_a_point_project_with_labels(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    env = _clean_env(tmp_path)
    setup = run_json("demo", "--dir", str(demo_dir), "--setup-only", "--mode", "point", env=env)
    assert setup["project"] == "demo-point" and setup["images"] > 0
    env["VOICECAP_DATA_DIR"] = str(demo_dir)
    shown = run_json("project", "show", "demo-point", env=env)
    assert shown["mode"] == "point" and shown["labels"] == ["person", "coin", "text"]
