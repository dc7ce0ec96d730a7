"""The LLM cleaner writes each caption in its transcript's language: the request it sends to a real
local OpenAI-compatible server (tests/support/fake_openai.py) names that language, through the
cleaner, the clean stage and the merge sweep on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.models import RecordingStatus
from tests.support import factories
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.test_llm_cleaner import drain, llm_settings
from transcribe.clean import load_cleaner
from transcribe.clean.prompts import load_prompt


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.behaviour = lambda request: Reply(caption="Un barco rojo.")
        yield server


@pytest.fixture
def factory(engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def systems(fake: FakeOpenAI) -> list[str]:
    return [body["messages"][0]["content"] for body in fake.stats.bodies]


def test_each_caption_is_asked_for_in_its_transcripts_language(fake: FakeOpenAI) -> None:
    cleaner = load_cleaner(llm_settings(fake.base_url, llm_concurrency=1))

    results = cleaner.clean_many(
        ["un barco rojo", "ein rotes boot", "a red boat", "قارب أحمر"], languages=["es", "de-AT", None, "ar"]
    )

    assert all(not isinstance(result, Exception) for result in results)
    written = sorted(system.split("fluent written ")[1].split(",")[0] for system in systems(fake))
    assert written == ["Arabic", "English", "German", "Spanish"]
    assert not any("{language}" in system for system in systems(fake))


def test_a_transcripts_own_braces_are_never_taken_for_a_slot(fake: FakeOpenAI) -> None:
    cleaner = load_cleaner(llm_settings(fake.base_url))

    cleaner.clean_many(["a sign that says {language}"], languages=["fr"])

    system, user = fake.stats.bodies[0]["messages"]
    assert "fluent written French" in system["content"]
    assert "a sign that says {language}" in user["content"]


def test_a_v1_prompt_without_a_language_slot_still_answers(fake: FakeOpenAI) -> None:
    assert not load_prompt("caption-v1").has_slot("language")
    cleaner = load_cleaner(llm_settings(fake.base_url, prompt_version="caption-v1"))

    [result] = cleaner.clean_many(["un barco rojo"], languages=["es"])

    assert not isinstance(result, Exception) and result.prompt_version == "caption-v1"
    assert "English" in systems(fake)[0]  # v1 always asked for English, and its id says so


def test_the_clean_stage_and_merge_ask_in_the_projects_language(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    project = factories.add_project(session, "es-project", per_image=2, language="es")
    image = factories.add_image(session, project)
    for n, text in enumerate(["un barco rojo en el puerto", "un barco rojo"]):
        user = factories.add_user(session, f"es-ann{n}")
        recording = factories.add_recording(session, image, user, status=RecordingStatus.transcribed)
        factories.add_transcript(session, recording, text, language="es")
    session.commit()

    totals = drain(factory, llm_settings(fake.base_url, merge_captions=True))

    assert (totals["done"], totals["merged"]) == (2, 1)
    assert len(systems(fake)) == 3
    assert all("fluent written Spanish" in system for system in systems(fake)[:2])
    assert "written Spanish in the present tense" in systems(fake)[2]  # the merge prompt
