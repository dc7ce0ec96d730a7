"""The annotator page in Arabic, in a real Chromium whose microphone is a WAV file, against the real app:
a project whose interface language is Arabic shows the strings of web/i18n/ar.json from its very first
painted frame, right to left (<html lang="ar" dir="rtl">, the layout mirrored, the image and the timer
still left to right), and still records, plays back (also with the P key of an Arabic keyboard layout)
and submits a take that the server stores. Screenshots land in tests/support/browser.SCREENSHOTS.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from annotate.services.interface_languages import CATALOG_DIR
from db.models import Recording
from tests.support import factories
from tests.support.browser import (
    DESKTOP,
    PHONE,
    logged_in_page,
    module_browser,
    scrolls_sideways,
    shot,
)
from tests.support.databases import sqlite_url
from tests.test_assignments import add_images
from tests.test_browser_task_ux import next_image, record

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse"
AR = json.loads((CATALOG_DIR / "ar.json").read_text(encoding="utf-8"))
INSTRUCTIONS = "انظر إلى الصورة وصِفها بصوت عالٍ بأكبر قدر ممكن من التفاصيل."
QUESTIONS = ["ما الذي تراه في الصورة للوهلة الأولى؟", "ما الأشياء الموجودة، وكم عدد كل منها؟"]

# Runs before the page's own scripts: notes <html dir>, the Record label and the skip button the first
# time the body is painted visible, which is when a person could see a flash of English.
FIRST_PAINT = """
(() => {
  const look = () => {
    const body = document.body;
    if (body && getComputedStyle(body).visibility === "visible") {
      window.__firstPaint = {
        dir: document.documentElement.dir,
        lang: document.documentElement.lang,
        record: (document.getElementById("record-label") || {}).textContent,
        logout: (document.getElementById("logout") || {}).textContent,
      };
      return;
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();
"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


browser = module_browser()


@pytest.fixture
def arabic_project(session, blobs, make_user):
    project = factories.add_project(
        session,
        "souk",
        instructions=INSTRUCTIONS,
        questions=QUESTIONS,
        min_seconds=2,
        max_seconds=20,
        language="ar",
        interface_language="ar",
    )
    session.commit()
    add_images(session, blobs, project, 3)
    make_user("ann", password=PASSWORD)
    session.commit()
    return project


def text(page, selector: str) -> str:
    return " ".join(page.inner_text(selector).split())


def box(page, selector: str) -> dict[str, float]:
    return page.eval_on_selector(selector, "e => e.getBoundingClientRect().toJSON()")


def direction(page, selector: str) -> str:
    return page.eval_on_selector(selector, "e => getComputedStyle(e).direction")


def stored(session) -> int:
    session.expire_all()
    count = session.scalar(select(func.count()).select_from(Recording))
    session.commit()  # end the read: SQLite's BEGIN IMMEDIATE would block the server's writes
    return int(count or 0)


def test_an_arabic_project_records_in_an_arabic_right_to_left_page(browser, server, arabic_project, session):
    page = logged_in_page(browser, server, "ann", PASSWORD, **DESKTOP)
    page.add_init_script(FIRST_PAINT)
    page.goto(f"{server}/task")
    page.wait_for_function("document.body.dataset.state === 'idle'")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")

    # Arabic and right to left from the first painted frame: no flash of English.
    first = page.evaluate("window.__firstPaint")
    assert first == {"dir": "rtl", "lang": "ar", "record": AR["recorder.record"], "logout": AR["logout"]}
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
    assert page.title() == AR["page.title"]
    assert text(page, "#record-label") == AR["recorder.record"]
    assert text(page, "#skip summary") == AR["skip.open"]
    assert text(page, ".hint") == AR["viewer.hint"]
    assert text(page, "#mic-state") == AR["mic.state.off"]
    assert text(page, "#timer-hint") == AR["timer.at_least"].replace("{min}", "0:02")
    assert text(page, ".keys").startswith(AR["keys.space"])
    assert page.get_attribute("#skip-note", "placeholder") == AR["skip.note_placeholder"]
    assert page.get_attribute("#zoom-in", "aria-label") == AR["viewer.zoom_in"]
    assert page.get_attribute("#image", "alt") == AR["viewer.alt"]
    assert text(page, "#instructions") == INSTRUCTIONS
    # Mirrored: the image on the right, the record button right of its timer; the image's viewport and
    # the timer's digits stay left to right.
    assert box(page, ".viewer")["x"] > box(page, ".side")["x"]
    assert box(page, "#record")["x"] > box(page, ".timer-box")["x"]
    assert direction(page, "#viewport") == "ltr" and direction(page, ".timer") == "ltr"
    assert direction(page, "#instructions") == "rtl" and direction(page, ".side") == "rtl"
    assert not scrolls_sideways(page)
    shot(page, "i18n-ar-1-task")

    # Record with the fake microphone.
    page.keyboard.press("Space")
    page.wait_for_function("document.body.dataset.state === 'recording'")
    assert text(page, "#record-label") == AR["recorder.stop"]
    page.wait_for_function(
        f"document.getElementById('mic-state').textContent === {AR['mic.state.recording']!r}"
    )
    page.wait_for_timeout(2800)
    shot(page, "i18n-ar-2-recording")
    page.keyboard.press("Space")
    page.wait_for_function("document.body.dataset.state === 'take'", timeout=10_000)
    assert text(page, "#record-label") == AR["recorder.record_again"]
    info = text(page, "#take-info")
    seconds = float(re.match(r"([\d.]+) ث · \d+ ك\.ب$", info).group(1))
    assert 2.8 < seconds < 5
    assert text(page, "#submit-label") == AR["submit.label"]
    assert page.is_enabled("#submit")

    # Listen back with the P key as an Arabic layout types it ("ح"): the physical key counts.
    page.dispatch_event("body", "keydown", {"key": "ح", "code": "KeyP"})
    page.wait_for_function("document.body.dataset.playing === 'true'")
    assert text(page, "#play") == AR["take.stop"]
    page.wait_for_function("document.body.dataset.played === 'true'", timeout=15_000)
    assert text(page, "#play") == AR["take.play"]
    shot(page, "i18n-ar-3-take")

    # The skip reasons are Arabic too (the codes stay the API's).
    page.click("#skip summary")
    labels = page.locator("#skip-reasons label").all_inner_texts()
    assert [label.strip() for label in labels] == [
        AR[f"skip.reason.{code}"] for code in ("image_broken", "inappropriate", "cannot_describe", "other")
    ]
    page.click("#skip-form button[type=submit]")
    assert text(page, "#skip-error") == AR["skip.choose_reason"]
    shot(page, "i18n-ar-4-skip")
    page.click("#skip summary")

    # Submit: the recording is stored, the next image comes, the "saved" line is Arabic.
    first_image = str(page.get_attribute("#image", "data-image-id"))
    page.click("#submit")
    next_image(page, first_image)
    assert stored(session) == 1
    take = session.scalar(select(Recording))
    session.commit()
    assert take.source == "browser" and abs(take.duration_seconds - seconds) < 0.6
    page.wait_for_selector("#saved:visible")
    assert text(page, "#saved").startswith("✓ تم الحفظ: وصف مدته")
    assert re.search(r"اليوم: وصفتَ 1 · تخطيتَ 0 · 0:0\d", text(page, "#today"))
    shot(page, "i18n-ar-5-saved")
    assert page.errors == []
    page.context.close()


def test_the_arabic_page_fits_a_phone(browser, server, arabic_project) -> None:
    page = logged_in_page(browser, server, "ann", PASSWORD, **PHONE)
    page.goto(f"{server}/task")
    page.wait_for_function("document.body.dataset.state === 'idle'")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert not scrolls_sideways(page)
    record(page, 2.5, click=True)
    assert text(page, "#record-label") == AR["recorder.record_again"]
    shot(page, "i18n-ar-phone")
    assert page.errors == []
    page.context.close()
