"""A project that asks for captions in another language than the one spoken (`--caption-language`):
the LLM cleaner is asked, through the clean stage and the merge sweep, to write in that language, and
the caption is flagged `translated:<from>-><to>` with no faithfulness figure (words cannot be compared
across languages); the rules cleaner cannot translate, so its caption keeps the words as spoken and is
flagged `untranslated:<from>-><to>`. A real local OpenAI-protocol server stands in for the LLM; every
test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annotate.errors import InvalidInput
from annotate.services import projects, review
from db.models import Caption, CaptionKind, Project, RecordingStatus
from db.settings import Settings
from tests.support import factories
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.test_llm_cleaner import drain, llm_settings

ARABIC = "في الصورة قارب أحمر صغير على الماء وخلفه ثلاث أشجار"
ENGLISH_CAPTION = "A small red boat on the water with three trees behind it."


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.behaviour = lambda request: Reply(caption=ENGLISH_CAPTION)
        yield server


@pytest.fixture
def factory(engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def systems(fake: FakeOpenAI) -> list[str]:
    return [body["messages"][0]["content"] for body in fake.stats.bodies]


def arabic_takes(session: Session, project: Project, count: int, language: str = "ar") -> None:
    image = factories.add_image(session, project)
    for n in range(count):
        user = factories.add_user(session, f"{project.name}-ann{n}")
        recording = factories.add_recording(session, image, user, status=RecordingStatus.transcribed)
        factories.add_transcript(session, recording, ARABIC, language=language)
    session.commit()


def captions(session: Session, kind: CaptionKind = CaptionKind.single) -> list[Caption]:
    session.expire_all()
    rows = list(session.scalars(select(Caption).where(Caption.kind == kind).order_by(Caption.id)))
    session.commit()
    return rows


def test_the_llm_writes_in_the_caption_language_and_the_caption_is_flagged_translated(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    project = factories.add_project(session, "souk", per_image=2, language="ar", caption_language="en")
    arabic_takes(session, project, 2)

    totals = drain(factory, llm_settings(fake.base_url, merge_captions=True))

    assert (totals["done"], totals["merged"]) == (2, 1)
    asked = systems(fake)
    assert len(asked) == 3
    assert all("fluent written English" in system for system in asked[:2])
    assert "written English in the present tense" in asked[2]  # the merge prompt
    assert not any("Arabic" in system for system in asked)
    for caption in [*captions(session), *captions(session, CaptionKind.merged)]:
        assert caption.text == ENGLISH_CAPTION
        assert caption.flags == ["translated:ar->en"]
        assert caption.flagged is True  # a reviewer checks every translation
        assert caption.faithfulness is None and caption.unsupported_words == []


def test_a_transcript_without_a_language_counts_as_the_projects(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    project = factories.add_project(session, "souk", language="ar", caption_language="fr")
    arabic_takes(session, project, 1, language="")

    drain(factory, llm_settings(fake.base_url))

    assert "fluent written French" in systems(fake)[0]
    [caption] = captions(session)
    assert caption.flags == ["translated:ar->fr"]


def test_the_rules_cleaner_keeps_the_words_as_spoken_and_says_so(
    session: Session, factory: sessionmaker[Session]
) -> None:
    project = factories.add_project(session, "souk", language="ar", caption_language="en")
    arabic_takes(session, project, 1)

    totals = drain(factory, Settings(cleaner="rules"))

    assert totals["done"] == 1
    [caption] = captions(session)
    assert caption.cleaner == "rules"
    assert "قارب أحمر" in caption.text  # not translated: the spoken words, cleaned
    assert "untranslated:ar->en" in caption.flags
    assert caption.flagged is True
    assert caption.faithfulness == 1.0  # the guard still compares it with the transcript it came from


def test_no_flag_when_the_speaker_used_the_caption_language_or_none_was_asked(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    fake.behaviour = lambda request: Reply()  # echo the transcript: faithful by construction
    asked_english = factories.add_project(session, "asked-en", language="en", caption_language="en-GB")
    as_spoken = factories.add_project(session, "as-spoken", language="ar")
    image = factories.add_image(session, asked_english)
    user = factories.add_user(session, "ann")
    recording = factories.add_recording(session, image, user, status=RecordingStatus.transcribed)
    factories.add_transcript(session, recording, "a red boat on the water", language="en")
    arabic_takes(session, as_spoken, 1)

    drain(factory, llm_settings(fake.base_url))

    assert sorted(s.split("fluent written ")[1].split(",")[0] for s in systems(fake)) == ["Arabic", "English"]
    for caption in captions(session):
        assert not any(":" in flag and "translated" in flag for flag in caption.flags)
        assert caption.faithfulness == 1.0


def test_a_reviewers_edit_of_a_translation_keeps_the_flag_and_is_not_compared_word_by_word(
    session: Session, factory: sessionmaker[Session], fake: FakeOpenAI
) -> None:
    project = factories.add_project(session, "souk", language="ar", caption_language="en")
    arabic_takes(session, project, 1)
    lead = factories.add_user(session, "lena", role="lead")
    session.commit()
    drain(factory, llm_settings(fake.base_url))
    [caption] = captions(session)

    result = review.decide(
        session, caption.id, lead, "edit", text="A small red boat with three trees behind it."
    )
    session.commit()

    edited = result.new_caption
    assert edited is not None
    assert edited.flags == ["translated:ar->en"]
    assert edited.faithfulness is None and edited.flagged is False  # a person checked it


def test_caption_and_interface_languages_are_checked_when_a_project_is_made_or_changed(
    session: Session,
) -> None:
    with pytest.raises(InvalidInput) as unknown:
        factories.add_project(session, "bad", caption_language="klingon")
    assert unknown.value.code == "unknown_caption_language"
    assert "en" in unknown.value.message and "es" in unknown.value.message
    with pytest.raises(InvalidInput) as no_catalog:
        factories.add_project(session, "bad", interface_language="fr")
    assert no_catalog.value.code == "unknown_interface_language"
    assert "available: ar, en" in no_catalog.value.message

    project = factories.add_project(session, "ok", caption_language="PT_br", interface_language="AR")
    assert (project.caption_language, project.interface_language) == ("pt-BR", "ar")
    projects.update_project(session, project, caption_language="", interface_language="en")
    assert (project.caption_language, project.interface_language) == (None, "en")
    with pytest.raises(InvalidInput):
        projects.update_project(session, project, interface_language="xx")
    session.rollback()
