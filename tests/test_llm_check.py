"""`voicecap llm check` through the real CLI, against the scripted OpenAI-protocol server
(tests/support/fake_openai.py); tests/test_llm_real_server.py runs it against llama.cpp's server."""

from __future__ import annotations

import socket

from tests.support.cli import run_cli, run_json
from tests.support.fake_openai import FakeOpenAI, Reply, refusing


def _env(fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    return {"VOICECAP_LLM_BASE_URL": fake.base_url, "VOICECAP_LLM_MODEL": fake.model, **extra}


def test_check_reports_each_json_mode_and_recommends_the_strictest_that_works() -> None:
    with FakeOpenAI(refusing({"json_schema"})) as fake:
        report = run_json("llm", "check", env=_env(fake))
        assert fake.stats.requests == 3 and fake.stats.model_lists == 1  # one call per mode, no retries

    assert (report["reachable"], report["model_listed"], report["models"]) == (True, True, ["fake-model"])
    outcomes = {probe["mode"]: (probe["outcome"], probe["works"]) for probe in report["modes"]}
    assert outcomes == {
        "json_schema": ("refused", False),
        "json_object": ("works", True),
        "none": ("works", True),
    }
    refused = report["modes"][0]
    assert "HTTP 500" in refused["detail"] and "Input should be 'text' or 'json_object'" in refused["detail"]
    assert all(probe["seconds"] >= 0 for probe in report["modes"]) and report["list_seconds"] >= 0
    assert report["recommended"] == {"VOICECAP_LLM_JSON_MODE": "json_object"}
    assert report["usable"] and report["problems"] == []


def test_check_prints_the_settings_to_export() -> None:
    with FakeOpenAI() as fake:
        result = run_cli("llm", "check", env=_env(fake))
    assert "json_schema" in result.stdout and "works" in result.stdout
    assert "export VOICECAP_LLM_JSON_MODE=json_schema" in result.stdout


def test_check_names_an_unlisted_model_and_a_slow_server() -> None:
    with FakeOpenAI(lambda request: Reply(delay=0.4)) as fake:
        report = run_json(
            "llm", "check", env=_env(fake, VOICECAP_LLM_MODEL="llama3.1", VOICECAP_LLM_TIMEOUT_SECONDS="1")
        )
    assert report["model_listed"] is False
    assert report["problems"] == ["model 'llama3.1' is not listed (listed: fake-model)"]
    assert report["recommended"]["VOICECAP_LLM_MODEL"] == "fake-model"
    assert report["recommended"]["VOICECAP_LLM_TIMEOUT_SECONDS"] == "10"  # 4 × the slowest answer, rounded up


def test_check_of_an_endpoint_that_gives_no_caption_exits_1() -> None:
    with FakeOpenAI(lambda request: Reply(content="I'm sorry, I cannot see images.")) as fake:
        result = run_cli("llm", "check", "--json", env=_env(fake), check=False)
    assert result.returncode == 1
    assert '"usable": false' in result.stdout and "no json mode gave a caption" in result.stdout


def test_check_of_an_unreachable_endpoint_says_so_and_exits_1() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"VOICECAP_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    result = run_cli("llm", "check", env=env, check=False)
    assert result.returncode == 1
    assert "reachable: no" in result.stdout and "not reachable" in result.stdout
