"""The LLM cleaner against a real local HTTP server speaking OpenAI's chat-completions protocol
(tests/support/fake_openai.py, uvicorn on a free loopback port), through the real `openai` client.

The server scripts answers, slow answers, 429s, 5xxs, malformed JSON and dropped connections; the
last tests drive transcribed Recording rows through the real worker loop (claims, leases, per-row
transactions) on SQLite and PostgreSQL and check that every row ends `captioned` or `failed` with a
clear error, never stuck and never duplicated.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db import queue
from db.models import Caption, CaptionKind, Recording, RecordingStatus, Transcript
from db.settings import Settings
from tests.support import factories
from tests.support.fake_openai import FakeOpenAI, Reply, by_transcript, echo, refusing
from transcribe.clean import load_cleaner
from transcribe.clean.base import CleanError, CleanResult, PermanentCleanError
from transcribe.clean.llm import FormatRefused, LLMCleaner
from transcribe.stages.captions import single_key
from transcribe.stages.clean import CleanProcessor
from transcribe.stages.merge import MergeReport, merge_images
from transcribe.usage import estimate_cost, token_totals
from transcribe.worker import Worker, WorkerConfig


def llm_settings(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "cleaner": "llm",
        "llm_base_url": base_url,
        "llm_model": "fake-model",
        "llm_concurrency": 4,
        "llm_timeout_seconds": 2.0,
        "llm_max_retries": 3,
        "llm_retry_base_seconds": 0.01,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


# -- one call -----------------------------------------------------------------------------------


def test_answer_becomes_a_caption_with_provenance_and_tokens(fake: FakeOpenAI) -> None:
    fake.behaviour = lambda request: Reply(caption="A red boat on calm water.")
    cleaner = load_cleaner(llm_settings(fake.base_url))
    assert isinstance(cleaner, LLMCleaner)

    result = cleaner.clean("um there's a red boat on, uh, calm water")

    assert result == CleanResult(
        "A red boat on calm water.", "llm", "fake-model", "caption-v2", result.prompt_tokens, 7
    )
    assert result.prompt_tokens > 100  # the system prompt and the transcript
    body = fake.stats.bodies[0]
    assert body["model"] == "fake-model" and body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and "Add nothing" in system["content"]
    assert "<transcript>\num there's a red boat on, uh, calm water\n</transcript>" in user["content"]


def test_429_and_5xx_are_retried_with_backoff(fake: FakeOpenAI) -> None:
    plan = {
        "a red boat": [Reply(status=429), Reply(status=500), Reply(status=503), Reply(caption="A red boat.")],
        "a blue car": [Reply(status=502), Reply(caption="A blue car.")],
    }
    fake.behaviour = by_transcript(plan)
    results = LLMCleaner(llm_settings(fake.base_url)).clean_many(list(plan))
    assert [r.text for r in results if isinstance(r, CleanResult)] == ["A red boat.", "A blue car."]
    assert fake.stats.attempts["a red boat"] == 4 and fake.stats.attempts["a blue car"] == 2


def test_retry_after_header_is_honoured(fake: FakeOpenAI) -> None:
    fake.behaviour = by_transcript({"a cat": [Reply(status=429, retry_after=0.6), Reply(caption="A cat.")]})
    started = time.monotonic()
    result = LLMCleaner(llm_settings(fake.base_url)).clean("a cat")
    assert result.text == "A cat." and time.monotonic() - started >= 0.6


def test_a_slow_answer_times_out_and_is_retried(fake: FakeOpenAI) -> None:
    fake.behaviour = by_transcript({"a slow cat": [Reply(delay=5), Reply(caption="A cat.")]})
    started = time.monotonic()
    result = LLMCleaner(llm_settings(fake.base_url, llm_timeout_seconds=0.5)).clean("a slow cat")
    assert result.text == "A cat."
    assert time.monotonic() - started < 3


def test_dropped_connection_is_retried(fake: FakeOpenAI) -> None:
    fake.behaviour = by_transcript({"a dog": [Reply(drop=True), Reply(drop=True), Reply(caption="A dog.")]})
    assert LLMCleaner(llm_settings(fake.base_url)).clean("a dog").text == "A dog."
    assert fake.stats.attempts["a dog"] == 3


def test_malformed_answers_are_retried_then_fail_clearly_with_their_tokens_counted(fake: FakeOpenAI) -> None:
    fake.behaviour = lambda request: Reply(content="Sure! Here is your caption: a dog.")
    result = LLMCleaner(llm_settings(fake.base_url, llm_max_retries=2)).clean_many(["a dog"])[0]
    assert isinstance(result, CleanError) and not isinstance(result, PermanentCleanError)
    message = str(result)
    assert message.startswith(f"llm fake-model at {fake.base_url}: gave up after 3 tries: malformed answer")
    assert message.endswith("×3")
    assert fake.stats.attempts["a dog"] == 3
    assert result.prompt_tokens > 0 and result.completion_tokens == 3 * 7  # paid for, so counted


@pytest.mark.parametrize(
    ("content", "finish_reason", "expected"),
    [
        ('```json\n{"caption": "A fenced dog."}\n```', "stop", "A fenced dog."),
        ('Here you go: {"caption": "  A dog  on grass. ", "notes": "x"}', "stop", "A dog on grass."),
        ('{"caption": {"text": "A nested dog."}}', "stop", "A nested dog."),  # SmolLM2's habit
        ('{"caption": {"a": "A dog.", "b": "A cat."}}', "stop", None),  # which one?
        ('{"text": "A dog."}', "stop", None),  # wrong key
        ('{"caption": "   "}', "stop", None),  # blank
        ('{"caption": "A dog on', "length", None),  # cut off
        ("", "stop", None),
    ],
)
def test_answers_are_validated(
    fake: FakeOpenAI, content: str, finish_reason: str, expected: str | None
) -> None:
    fake.behaviour = lambda request: Reply(content=content, finish_reason=finish_reason)
    result = LLMCleaner(llm_settings(fake.base_url, llm_max_retries=0)).clean_many(["a dog"])[0]
    if expected is None:
        assert isinstance(result, CleanError) and "malformed answer" in str(result)
    else:
        assert isinstance(result, CleanResult) and result.text == expected


def test_a_surprise_fails_one_item_not_the_batch(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    from transcribe.clean import llm

    real = llm.parse_answer

    def parse(response, **options):
        if "boom" in response.choices[0].message.content:
            raise RuntimeError("boom")
        return real(response, **options)

    monkeypatch.setattr(llm, "parse_answer", parse)
    ok, surprise = LLMCleaner(llm_settings(fake.base_url)).clean_many(["a dog", "boom"])
    assert isinstance(ok, CleanResult) and ok.text == "a dog"
    assert isinstance(surprise, CleanError) and "unexpected RuntimeError: boom" in str(surprise)
    assert fake.stats.requests == 2  # not retried


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_permanent_and_not_retried(fake: FakeOpenAI, status: int) -> None:
    fake.behaviour = lambda request: Reply(status=status)
    result = LLMCleaner(llm_settings(fake.base_url)).clean_many(["a dog"])[0]
    assert isinstance(result, PermanentCleanError) and result.permanent
    assert f"HTTP {status} scripted {status} (not retried)" in str(result)
    assert fake.stats.requests == 1


def test_an_unreachable_endpoint_fails_after_the_retries() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = llm_settings(f"http://127.0.0.1:{port}/v1", llm_max_retries=2)
    result = LLMCleaner(settings).clean_many(["a dog"])[0]
    assert isinstance(result, CleanError) and "gave up after 3 tries: connection error" in str(result)


def test_concurrency_is_bounded_and_used(fake: FakeOpenAI) -> None:
    fake.behaviour = echo(delay=0.3)
    transcripts = [f"transcript number {i}" for i in range(16)]
    started = time.monotonic()
    results = LLMCleaner(llm_settings(fake.base_url, llm_concurrency=4)).clean_many(transcripts)
    elapsed = time.monotonic() - started
    assert [r.text for r in results if isinstance(r, CleanResult)] == transcripts  # in order
    assert fake.stats.max_in_flight == 4
    assert 1.2 <= elapsed < 4  # four waves of four, not sixteen calls one after another


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    cleaner = LLMCleaner(llm_settings("http://127.0.0.1:9/v1", llm_retry_base_seconds=1.0))
    for attempt, low, high in [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 15.0, 30.0)]:
        delays = [cleaner.backoff_seconds(attempt, None) for _ in range(50)]
        assert all(low <= d <= high for d in delays), (attempt, min(delays), max(delays))
    assert cleaner.backoff_seconds(1, retry_after=7.0) == 7.0
    assert cleaner.backoff_seconds(1, retry_after=600.0) == 30.0


@pytest.mark.parametrize("mode", ["json_schema", "none"])
def test_structured_output_mode_is_configurable(fake: FakeOpenAI, mode: str) -> None:
    LLMCleaner(llm_settings(fake.base_url, llm_json_mode=mode)).clean("a dog")
    body = fake.stats.bodies[0]
    if mode == "none":
        assert "response_format" not in body
    else:
        schema = body["response_format"]["json_schema"]["schema"]
        assert schema["required"] == ["caption"] and body["response_format"]["type"] == "json_schema"


def test_answers_are_capped_at_llm_max_tokens(fake: FakeOpenAI) -> None:
    LLMCleaner(llm_settings(fake.base_url)).clean("a dog")
    LLMCleaner(llm_settings(fake.base_url, llm_max_tokens=0)).clean("a cat")
    assert fake.stats.bodies[0]["max_tokens"] == 1024 and "max_tokens" not in fake.stats.bodies[1]


# -- a server that refuses the json mode, and answers that are not captions ----------------------


def _format(body: dict) -> str:
    return (body.get("response_format") or {}).get("type", "none")


def test_a_refused_json_schema_is_detected_once_and_falls_back_without_a_retry_storm(
    fake: FakeOpenAI,
) -> None:
    """llama.cpp's server answers json_schema with HTTP 500: one refusal, then json_object for all."""
    fake.behaviour = refusing({"json_schema"})
    cleaner = LLMCleaner(llm_settings(fake.base_url, llm_json_mode="json_schema", llm_retry_base_seconds=5))
    texts = [f"a boat number {i}" for i in range(6)]
    started = time.monotonic()

    results = cleaner.clean_many(texts)

    assert [r.text for r in results if isinstance(r, CleanResult)] == texts
    assert fake.stats.requests == len(texts) + 1  # one refusal, then one request per transcript
    assert [_format(body) for body in fake.stats.bodies] == ["json_schema"] + ["json_object"] * 6
    assert time.monotonic() - started < 5  # no backoff: a refusal is not a temporary failure
    assert cleaner.json_mode == "json_object" and cleaner.mode_settled
    [refusal] = cleaner.refusals
    assert refusal.startswith("json_schema: HTTP 500 1 validation error:")
    assert "Input should be 'text' or 'json_object'" in refusal
    # Detected once: later batches and merges ask in json_object straight away.
    cleaner.clean_many(["a red car", "a blue car"])
    cleaner.merge_many([["a dog", "a cat"]])
    assert fake.stats.requests == len(texts) + 4
    assert {_format(body) for body in fake.stats.bodies[7:]} == {"json_object"}


def test_the_refusal_is_remembered_even_when_the_next_answer_is_malformed(fake: FakeOpenAI) -> None:
    # The first transcript's 1st request is refused, its 2nd (json_object) malformed, its 3rd answered.
    first = by_transcript({"a boat number 0": [Reply(), Reply(content="not json"), Reply(caption="A boat.")]})
    fake.behaviour = refusing({"json_schema"}, then=first)
    cleaner = LLMCleaner(llm_settings(fake.base_url, llm_json_mode="json_schema", llm_max_retries=1))
    results = cleaner.clean_many([f"a boat number {i}" for i in range(5)])
    assert all(isinstance(result, CleanResult) for result in results)
    assert [_format(body) for body in fake.stats.bodies] == ["json_schema"] + ["json_object"] * 6
    assert len(cleaner.refusals) == 1 and cleaner.json_mode == "json_object"


def test_a_server_refusing_every_response_format_gets_prose_and_keeps_it(fake: FakeOpenAI) -> None:
    prose = lambda request: Reply(content=f"Here is the caption: {request.transcripts[0].capitalize()}.")  # noqa: E731
    fake.behaviour = refusing(
        {"json_schema", "json_object"}, status=400, message="response_format is not supported", then=prose
    )
    cleaner = LLMCleaner(llm_settings(fake.base_url, llm_json_mode="json_schema"))
    results = cleaner.clean_many(["a red boat", "two dogs", "a lamp"])
    assert [r.text for r in results if isinstance(r, CleanResult)] == ["A red boat.", "Two dogs.", "A lamp."]
    assert [_format(body) for body in fake.stats.bodies] == [
        "json_schema",
        "json_object",
        "none",
        "none",
        "none",
    ]
    assert cleaner.json_mode == "none"


def test_a_400_for_another_reason_is_not_taken_for_a_refused_format(fake: FakeOpenAI) -> None:
    fake.behaviour = lambda request: Reply(status=400, message="the prompt is longer than the context")
    cleaner = LLMCleaner(llm_settings(fake.base_url, llm_json_mode="json_schema"))
    result = cleaner.clean_many(["a dog"])[0]
    assert isinstance(result, PermanentCleanError) and "the prompt is longer than the context" in str(result)
    assert fake.stats.requests == 1 and cleaner.json_mode == "json_schema" and cleaner.refusals == []


def test_once_a_mode_worked_a_refusal_is_an_ordinary_error(fake: FakeOpenAI) -> None:
    """A settled mode is not stepped down: a later 500 naming the format is retried like any 500."""
    cleaner = LLMCleaner(llm_settings(fake.base_url, llm_json_mode="json_object", llm_max_retries=1))
    assert cleaner.clean("a dog").text == "a dog"
    fake.behaviour = refusing({"json_object"})
    result = cleaner.clean_many(["a cat"])[0]
    assert isinstance(result, CleanError) and "gave up after 2 tries: HTTP 500 ×2" in str(result)
    assert cleaner.json_mode == "json_object"


def test_without_fallback_a_refusal_is_reported_as_such(fake: FakeOpenAI) -> None:
    fake.behaviour = refusing({"json_schema"})
    cleaner = LLMCleaner(llm_settings(fake.base_url, llm_json_mode="json_schema"), fallback=False)
    result = cleaner.clean_many(["a dog"])[0]
    assert isinstance(result, FormatRefused) and result.permanent
    assert "response_format json_schema refused: HTTP 500" in str(result)
    assert fake.stats.requests == 1


@pytest.mark.parametrize(
    "copied",
    ["<the caption>", "your caption", "[caption]", "Caption", "Three, no, four boats.", "four boats"],
)
def test_a_copied_placeholder_is_malformed(fake: FakeOpenAI, copied: str) -> None:
    fake.behaviour = lambda request: Reply(caption=copied)
    result = LLMCleaner(llm_settings(fake.base_url, llm_max_retries=1)).clean_many(["a dog"])[0]
    assert isinstance(result, CleanError) and "copies the prompt's placeholder" in str(result)
    assert fake.stats.requests == 2  # malformed answers are retried like any other


def test_the_prompts_give_a_small_model_nothing_to_copy() -> None:
    from transcribe.clean.prompts import resolve

    for kind in ("caption", "merge"):
        prompt = resolve(kind)
        assert "<the caption>" not in prompt.system + prompt.user
        assert not any(example.startswith("<") for example in prompt.examples)
        assert '"caption"' in prompt.user  # the answer's form is restated last, by the transcript


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("A red boat on calm water.", "A red boat on calm water."),
        ("Sure! Here is the caption: A red boat on calm water.", "A red boat on calm water."),
        ('"A red boat on calm water."', "A red boat on calm water."),
        ('{"caption": "A red boat."}', "A red boat."),
        ("I'm sorry, but I cannot describe an image I cannot see.", None),
        ("You turn an annotator's spoken description of an image into a written caption.", None),
        ("<transcript>\na red boat\n</transcript>", None),
        ("This transcript contains a written caption of the spoken description.", None),  # SmolLM2, verbatim
        ('{"text": "A red boat."}', None),  # JSON with the wrong key is still wrong
        ("<the caption>", None),
    ],
)
def test_none_mode_takes_a_plausible_prose_answer(
    fake: FakeOpenAI, content: str, expected: str | None
) -> None:
    fake.behaviour = lambda request: Reply(content=content)
    settings = llm_settings(fake.base_url, llm_json_mode="none", llm_max_retries=0)
    result = LLMCleaner(settings).clean_many(["a red boat on calm water"])[0]
    if expected is None:
        assert isinstance(result, CleanError) and "malformed answer" in str(result)
    else:
        assert isinstance(result, CleanResult) and result.text == expected


def test_merge_sends_every_transcript_with_the_merge_prompt(fake: FakeOpenAI) -> None:
    fake.behaviour = lambda request: Reply(caption="A dog and a green lamp.")
    cleaner = LLMCleaner(llm_settings(fake.base_url))
    result = cleaner.merge_many([["a dog on a sofa", "a green lamp behind the sofa"]])[0]
    assert isinstance(result, CleanResult) and result.prompt_version == "merge-v2"
    user = fake.stats.bodies[0]["messages"][1]["content"]
    assert '<transcript n="1">\na dog on a sofa\n</transcript>\n<transcript n="2">' in user


def test_works_when_called_from_inside_an_event_loop(fake: FakeOpenAI) -> None:
    cleaner = LLMCleaner(llm_settings(fake.base_url))

    async def handler() -> str:
        return cleaner.clean("a dog inside a loop").text

    assert asyncio.run(handler()) == "a dog inside a loop"


def test_cost_estimate_needs_a_price() -> None:
    assert estimate_cost(1_000_000, 500_000, Settings()) is None
    priced = Settings(llm_price_per_million_input=0.15, llm_price_per_million_output=0.6)
    assert estimate_cost(1_000_000, 500_000, priced) == pytest.approx(0.45)


# -- the whole clean stage on a real database --------------------------------------------------


def seed(session: Session, texts: list[str], per_image: int = 1, project: str = "p") -> list[int]:
    """Transcribed recordings with their transcripts; `per_image` recordings share each image."""
    proj = factories.add_project(session, project, per_image=per_image)
    users = [factories.add_user(session, f"{project}-ann{i}") for i in range(per_image)]
    ids = []
    image = None
    for i, text in enumerate(texts):
        if i % per_image == 0:
            image = factories.add_image(session, proj)
        assert image is not None
        recording = factories.add_recording(
            session, image, users[i % per_image], status=RecordingStatus.transcribed
        )
        factories.add_transcript(session, recording, text, engine="test", model="test", engine_version="0")
        ids.append(recording.id)
    session.commit()
    return ids


def drain(factory: sessionmaker[Session], settings: Settings, **config: object) -> dict[str, int]:
    values: dict[str, object] = {
        "worker_id": "clean-test",
        "batch_size": 8,
        "lease_seconds": 60,
        "max_attempts": 2,
        "backoff_seconds": 0,
        "poll_seconds": 0.05,
    }
    values.update(config)
    worker = Worker(factory, [CleanProcessor(settings=settings)], WorkerConfig(**values))
    return worker.run(drain=True)["clean"].as_dict()


@pytest.fixture
def factory(engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


SCRIPT = {
    "a red boat on the water": [Reply(caption="A red boat on the water.")],
    "two dogs on a sofa": [Reply(status=429), Reply(status=429), Reply(caption="Two dogs on a sofa.")],
    "a slow green lamp": [Reply(delay=5), Reply(caption="A green lamp.")],
    "a dropped blue cup": [Reply(drop=True), Reply(caption="A blue cup.")],
    "a sign says open": [Reply(content="not json"), Reply(caption='A sign says "open".')],
    "the server keeps failing": [Reply(status=500)],
    "the answer is never json": [Reply(content="I cannot do that.")],
    "the key is wrong": [Reply(status=401)],
    "a cat, um, a black cat": [Reply(caption="A black cat wearing a golden crown.")],  # invents
    "twelve eggs in a box": [Reply(caption="Eggs in a box.")],  # loses a count
}


def test_every_recording_ends_captioned_or_failed_never_stuck_or_duplicated(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    fake.behaviour = by_transcript(SCRIPT)
    ids = dict(zip(seed(session, list(SCRIPT)), SCRIPT, strict=True))
    settings = llm_settings(fake.base_url, llm_timeout_seconds=0.5, llm_max_retries=2)

    totals = drain(factory, settings)

    session.rollback()
    recordings = {r.id: r for r in session.scalars(select(Recording))}
    captions = session.scalars(select(Caption)).all()
    status = {ids[rid]: r.status for rid, r in recordings.items()}
    failed = {text for text, s in status.items() if s == RecordingStatus.failed}
    assert set(status.values()) == {RecordingStatus.captioned, RecordingStatus.failed}
    assert failed == {"the server keeps failing", "the answer is never json", "the key is wrong"}
    assert (totals["done"], totals["failed"]) == (7, 3)
    # Exactly one caption per captioned recording, none for a failed one.
    assert sorted(c.recording_id for c in captions) == sorted(
        rid for rid, r in recordings.items() if r.status == RecordingStatus.captioned
    )
    by_text = {ids[c.recording_id]: c for c in captions}
    assert by_text["two dogs on a sofa"].text == "Two dogs on a sofa."
    for recording in recordings.values():
        assert recording.claimed_by is None and recording.lease_until is None
        if recording.status == RecordingStatus.failed:
            assert recording.last_error.startswith(f"clean attempt {recording.attempts}: ")
    errors = {ids[rid]: (r.attempts, r.last_error) for rid, r in recordings.items() if r.status == "failed"}
    assert errors["the server keeps failing"][0] == 2  # max_attempts, each of 3 tries
    assert "gave up after 3 tries: HTTP 500 ×3" in errors["the server keeps failing"][1]
    assert "malformed answer" in errors["the answer is never json"][1]
    assert errors["the key is wrong"][0] == 1  # permanent: failed on the first attempt
    assert "HTTP 401" in errors["the key is wrong"][1]
    # Provenance and the faithfulness guard.
    for caption in captions:
        transcript = session.get(Transcript, caption.transcript_id)
        assert transcript.recording_id == caption.recording_id
        assert (caption.kind, caption.cleaner, caption.model) == (CaptionKind.single, "llm", "fake-model")
        assert caption.prompt_version == "caption-v2" and caption.status == "pending"
        assert caption.created_at is not None and caption.prompt_tokens > 0 and caption.completion_tokens > 0
    invented = by_text["a cat, um, a black cat"]
    assert invented.flagged and set(invented.unsupported_words) >= {"wearing", "golden", "crown"}
    assert by_text["twelve eggs in a box"].flags == ["numbers_lost", "numbers_lost:12"]
    assert not by_text["a red boat on the water"].flagged
    # Token usage sums over stored captions.
    usage = token_totals(session)
    assert usage.captions == 7
    assert usage.prompt_tokens == sum(c.prompt_tokens for c in captions)
    # Nothing left to do: a second drain claims nothing and stores nothing.
    assert drain(factory, settings)["batches"] == 0
    assert session.scalar(select(func.count(Caption.id))) == 7


def test_rows_of_a_dead_worker_are_cleaned_once_its_lease_runs_out(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    seed(session, [f"a boat number {i}" for i in range(5)])
    with factory() as claim_session, claim_session.begin():  # a worker claims, then dies
        claimed = queue.claim(
            claim_session, queue.STAGES["clean"], "dead", 3, lease_seconds=0.5, max_crashes=3
        )
    assert len(claimed) == 3
    time.sleep(0.6)

    totals = drain(factory, llm_settings(fake.base_url), max_attempts=3)

    assert totals["done"] == 5
    session.rollback()
    assert session.scalar(select(func.count(Caption.id))) == 5
    assert {r.status for r in session.scalars(select(Recording))} == {RecordingStatus.captioned}


def test_a_new_cleaner_or_prompt_adds_captions_and_never_overwrites(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    [rid] = seed(session, ["um, three, no, four boats in a harbour"])
    drain(factory, Settings(cleaner="rules"))
    first = session.scalars(select(Caption)).one()
    assert (first.cleaner, first.prompt_version, first.text) == (
        "rules",
        "rules-v1",
        "Four boats in a harbour.",
    )
    session.rollback()  # end the read: on SQLite an open transaction would keep an old snapshot

    def send_back() -> None:  # a reviewer's "re-clean"
        with factory() as s, s.begin():
            s.execute(update(Recording).values(status=RecordingStatus.transcribed, attempts=0))

    send_back()
    drain(factory, llm_settings(fake.base_url))
    send_back()
    totals = drain(factory, llm_settings(fake.base_url))  # the same cleaner and prompt again

    session.rollback()
    captions = session.scalars(select(Caption).order_by(Caption.id)).all()
    assert [(c.cleaner, c.prompt_version) for c in captions] == [("rules", "rules-v1"), ("llm", "caption-v2")]
    assert captions[0].text == "Four boats in a harbour." and captions[0].status == "pending"
    assert totals["done"] + totals["duplicate"] == 1  # the job done twice stored one caption
    assert session.get(Recording, rid).status == RecordingStatus.captioned
    assert len({c.dedupe_key for c in captions}) == 2


def test_dedupe_key_names_transcript_cleaner_prompt_and_model() -> None:
    base = CleanResult("x", "llm", "m", "caption-v1")
    keys = {
        single_key(1, base),
        single_key(2, base),
        single_key(1, CleanResult("x", "llm", "m", "caption-v2")),
        single_key(1, CleanResult("x", "llm", "other", "caption-v1")),
        single_key(1, CleanResult("x", "rules", "", "rules-v1")),
    }
    assert len(keys) == 5
    assert single_key(1, base) == single_key(1, CleanResult("different text", "llm", "m", "caption-v1", 5, 5))
    long_model = CleanResult("x", "llm", "/models/" + "very-long-name/" * 30, "caption-v1")
    assert len(single_key(1, long_model)) <= 300


def test_merged_caption_once_every_recording_of_an_image_is_captioned(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    texts = ["a dog on a sofa", "a brown dog and a green lamp", "three cups", "a cup"]
    ids = seed(session, texts, per_image=2)
    fake.behaviour = lambda request: Reply(
        caption="A brown dog on a sofa beside a green lamp."
        if len(request.transcripts) > 1
        else request.transcripts[0].capitalize() + "."
    )
    settings = llm_settings(fake.base_url, merge_captions=True)
    cleaner = load_cleaner(settings)
    # Only the first image is complete: its second image still has a recording waiting.
    with factory() as s, s.begin():
        s.execute(update(Recording).where(Recording.id == ids[3]).values(status=RecordingStatus.uploaded))
    # The worker writes merged captions in its idle sweep (transcribe/stages/merge.py).
    assert drain(factory, settings)["merged"] == 1

    merged = session.scalars(select(Caption).where(Caption.kind == CaptionKind.merged)).one()
    first_image = session.get(Recording, ids[0]).image_id
    assert (merged.image_id, merged.recording_id, merged.transcript_id) == (first_image, None, None)
    assert (merged.cleaner, merged.prompt_version) == ("llm", "merge-v2")
    assert merged.faithfulness == 1.0 and not merged.flagged  # supported by the two transcripts together
    assert merged.prompt_tokens > 0
    assert merge_images(factory, cleaner, settings) == MergeReport()  # idempotent
    assert session.scalar(select(func.count(Caption.id)).where(Caption.kind == CaptionKind.single)) == 3
    session.rollback()
    # Once the last recording is in, the second image is merged too; never without merge_captions.
    with factory() as s, s.begin():
        s.execute(update(Recording).where(Recording.id == ids[3]).values(status=RecordingStatus.transcribed))
    assert drain(factory, settings.model_copy(update={"merge_captions": False}))["done"] == 1
    assert merge_images(factory, cleaner, settings.model_copy(update={"merge_captions": False})).images == 0
    report = merge_images(factory, cleaner, settings)
    assert (report.images, report.written, report.failed) == (1, 1, {})
    assert session.scalar(select(func.count(Caption.id)).where(Caption.kind == CaptionKind.merged)) == 2


def test_rules_cleaner_through_the_worker(session: Session, factory: sessionmaker[Session]) -> None:
    seed(session, ["uh, there are twenty, no, twenty-one birds on a wire", "   "])
    totals = drain(factory, Settings(cleaner="rules"))
    assert (totals["done"], totals["failed"]) == (1, 1)
    session.rollback()
    caption = session.scalars(select(Caption)).one()
    assert caption.text == "There are 21 birds on a wire."
    assert (caption.faithfulness, caption.flagged, caption.prompt_tokens) == (1.0, False, 0)
    empty = session.scalars(select(Recording).where(Recording.status == RecordingStatus.failed)).one()
    assert empty.attempts == 1 and "the transcript is empty" in empty.last_error


def test_fake_server_speaks_plain_http(fake: FakeOpenAI) -> None:
    """The fake is a real server: a raw HTTP client gets a chat completion from it."""
    import httpx

    response = httpx.post(
        f"{fake.base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "<transcript>\nhi\n</transcript>"}]},
    )
    assert response.status_code == 200
    assert json.loads(response.json()["choices"][0]["message"]["content"]) == {"caption": "hi"}


def test_no_merge_until_the_project_has_all_its_annotators(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    seed(session, ["a dog on a sofa", "a brown dog"], per_image=3)  # two of the three takes are in
    settings = llm_settings(fake.base_url, merge_captions=True)
    totals = drain(factory, settings)
    assert (totals["done"], totals.get("merged", 0)) == (2, 0)
    assert merge_images(factory, load_cleaner(settings), settings).images == 0
