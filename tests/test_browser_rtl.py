"""Right-to-left text on the review page in a real Chromium: an Arabic transcript and caption read and
edit right to left (dir="auto"), while English ones stay left to right; unsure words are underlined and
the language-mismatch flag reads as a sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.models import Caption, Transcript
from tests.support.databases import sqlite_url
from tests.support.review_seed import seed
from tests.test_browser_review import _open_review, _page_as, browser  # noqa: F401  (a fixture)

pytestmark = pytest.mark.browser
ARABIC_TRANSCRIPT = "في الصورة قارب أحمر على البحر"
ARABIC_CAPTION = "قارب أحمر على بحر هادئ."


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


def _direction(page, element_id: str) -> str:
    return page.evaluate(f"getComputedStyle(document.getElementById('{element_id}')).direction")


def test_an_arabic_caption_reads_and_edits_right_to_left(browser, server, session, blobs) -> None:  # noqa: F811
    data = seed(session, blobs)
    arabic, english = data.captions[0], data.captions[1]
    transcript = session.get(Transcript, arabic.transcript_id)
    transcript.text, transcript.language = ARABIC_TRANSCRIPT, "ar"
    transcript.flags = ["unsure", "language_mismatch:ar!=en"]  # the seeded project is English
    transcript.words = [
        {"start": i * 0.5, "end": i * 0.5 + 0.4, "word": word, "probability": 0.2 if i == 2 else 0.9}
        for i, word in enumerate(ARABIC_TRANSCRIPT.split())
    ]
    session.get(Caption, arabic.id).text = ARABIC_CAPTION
    session.commit()

    page = _page_as(browser, server, "lena")
    try:
        _open_review(page, server, f"?caption={arabic.id}")
        page.wait_for_function(f"document.getElementById('caption-text').value === {ARABIC_CAPTION!r}")
        assert _direction(page, "caption-text") == "rtl"
        assert _direction(page, "transcript") == "rtl"
        assert page.locator("#transcript").inner_text().split() == ARABIC_TRANSCRIPT.split()
        assert page.locator("#transcript .word.unsure").all_inner_texts() == ["قارب"]  # underlined
        badges = page.locator("#flags .badge").all_inner_texts()
        assert "unsure" in badges and "spoke ar in a project set to en" in badges
        # Typing at the end of an RTL textarea appends to the Arabic text, as a writer of Arabic expects.
        page.keyboard.press("e")  # editing is an explicit mode; it focuses the caption
        page.keyboard.press("End")
        page.keyboard.type(" صغير")
        assert page.locator("#caption-text").input_value() == ARABIC_CAPTION + " صغير"
        assert _direction(page, "caption-text") == "rtl"

        _open_review(page, server, f"?caption={english.id}")
        page.wait_for_function(
            f"document.getElementById('item-title').textContent === 'Caption #{english.id}'"
        )
        assert _direction(page, "caption-text") == "ltr"
        assert _direction(page, "transcript") == "ltr"
        assert page.errors == []
    finally:
        page.context.close()


def test_translation_flags_read_as_sentences(browser, server, session, blobs) -> None:  # noqa: F811
    data = seed(session, blobs)
    translated, untranslated = data.captions[0], data.captions[1]
    session.get(Caption, translated.id).flags = ["translated:ar->en"]
    session.get(Caption, untranslated.id).flags = ["untranslated:ar->en"]
    session.commit()

    page = _page_as(browser, server, "lena")
    try:
        _open_review(page, server, f"?caption={translated.id}")
        page.wait_for_function(
            f"document.getElementById('item-title').textContent === 'Caption #{translated.id}'"
        )
        assert "translated from ar to en: check it" in page.locator("#flags .badge").all_inner_texts()
        _open_review(page, server, f"?caption={untranslated.id}")
        page.wait_for_function(
            f"document.getElementById('item-title').textContent === 'Caption #{untranslated.id}'"
        )
        badges = page.locator("#flags .badge").all_inner_texts()
        assert "left in ar: en was asked, the rules cleaner cannot translate" in badges
        assert page.errors == []
    finally:
        page.context.close()
