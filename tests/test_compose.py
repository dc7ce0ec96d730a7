"""docker-compose.yml parses, and every voicecap command it runs exists (no Docker engine here)."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from tests.support.cli import run_cli

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def _commands() -> list[list[str]]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    found = []
    for service in services.values():
        command = service.get("command")
        if command is None:
            continue
        text = command[-1] if command[:2] == ["sh", "-c"] else shlex.join(command)
        for part in text.split("&&"):
            words = shlex.split(part)
            if words and words[0] == "voicecap":
                found.append(words[1:])
    return found


def test_compose_file_has_postgres_app_and_scalable_worker() -> None:
    data = yaml.safe_load(COMPOSE.read_text())
    services = data["services"]
    assert {"postgres", "app", "worker"} <= set(services)
    assert "healthcheck" in services["app"] and "healthcheck" in services["postgres"]
    assert "container_name" not in services["worker"]  # --scale worker=N needs unnamed containers
    assert services["worker"]["environment"]["VOICECAP_ENGINE"]


def test_compose_shares_only_postgres_and_the_object_store() -> None:
    data = yaml.safe_load(COMPOSE.read_text())
    services = data["services"]
    assert "healthcheck" in services["objects"] and "-s3" in services["objects"]["command"]
    for name in ("app", "worker", "worker-gpu"):
        service = services[name]
        env = service["environment"]
        assert env["VOICECAP_BLOB_URL"].startswith("${VOICECAP_BLOB_URL:-s3://"), name
        assert env["AWS_ENDPOINT_URL"] and env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"], name
        # No data volume: only the GPU worker's model cache, which is its own.
        mounts = [v.split(":")[1] for v in service.get("volumes", [])]
        assert "/data" not in mounts, f"{name} still mounts a shared data volume"
    assert "blobs" not in (data.get("volumes") or {})
    assert services["app"]["depends_on"]["bucket"]["condition"] == "service_completed_successfully"


def test_every_voicecap_command_in_compose_exists() -> None:
    commands = _commands()
    assert len(commands) >= 3
    for args in commands:
        # Keep the subcommand path (words before the first option) and ask it for --help.
        path = [w for w in args if not w.startswith("-")][: 2 if args[0] in {"db", "user"} else 1]
        result = run_cli(*path, "--help", check=False)
        assert result.returncode == 0, f"voicecap {' '.join(path)} does not exist: {result.stderr}"
        # Every option it passes must be one that command accepts.
        for option in (w for w in args if w.startswith("--")):
            assert option in result.stdout, f"voicecap {' '.join(path)} has no option {option}"
