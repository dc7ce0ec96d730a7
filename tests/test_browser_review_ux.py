"""The lead's pages on the screens issue 11 found faults on, in a real Chromium against the real app over
HTTP (SQLite; the API underneath is tested on both databases in test_triage.py).

1 shortcuts never type into a caption; 2 the decision bar stays on screen, the diff on demand, the
image zooms, preset reject reasons by number keys, batch approval with a count to confirm; 3 one look
(shared tokens, dark mode) and a lead nav that fits a phone; 11 the dashboard's axes fit the data and it
shows skips, reviewer throughput and upload-to-caption time; 12 the worst takes first, with unsure
words underlined in the caption. Screenshots land in tests/support/browser.SCREENSHOTS.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Assignment, AssignmentStatus, Caption, Review, utcnow
from tests.support.browser import (
    DESKTOP,
    PHONE,
    SCREENS,
    logged_in_page,
    module_browser,
    on_screen,
    scrolls_sideways,
    shot,
)
from tests.support.databases import sqlite_url
from tests.support.review_seed import PASSWORD, seed
from tests.test_triage import add_misheard_take

pytestmark = pytest.mark.browser


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


browser = module_browser(mic=None)


@pytest.fixture
def data(session, blobs):
    return seed(session, blobs)


def open_review(browser, server: str, screen: dict, query: str = "", **context):
    page = logged_in_page(browser, server, "lena", PASSWORD, **screen, **context)
    page.goto(f"{server}/review{query}")
    page.wait_for_selector("#item-body:not([hidden])")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    return page


def reviews(session) -> list[tuple[int, str, str]]:
    session.expire_all()
    rows = [
        (r.caption_id, r.decision.value, r.reason)
        for r in session.scalars(select(Review).order_by(Review.id))
    ]
    session.commit()
    return rows


def title_is(page, caption_id: int) -> None:
    page.wait_for_function(f"document.getElementById('item-title').textContent === 'Caption #{caption_id}'")


# 1. After Ctrl+Enter, focus is back on the page: `a` approves the next caption instead of typing "a".
def test_shortcuts_never_type_into_a_caption(browser, server, data, session) -> None:
    first, second, third = (c.id for c in data.captions)
    page = open_review(browser, server, DESKTOP)
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.id") == "caption-text"
    box = page.locator("#caption-text")
    box.fill(box.input_value() + " A gull sits on the roof.")
    box.press("Control+Enter")
    title_is(page, second)
    assert page.evaluate("document.activeElement.tagName") != "TEXTAREA"
    assert page.is_hidden("#caption-text")  # reading, not editing
    page.keyboard.press("a")
    title_is(page, third)
    assert reviews(session) == [(first, "edit", ""), (second, "approve", "")]
    session.expire_all()
    assert session.get(Caption, second).status == "approved"
    session.commit()

    page.keyboard.press("e")
    page.keyboard.type("xyz")
    page.keyboard.press("Escape")  # leaves edit mode; the draft stays, the keys are shortcuts again
    assert page.is_hidden("#caption-text")
    assert page.evaluate("document.activeElement.tagName") != "TEXTAREA"
    assert "Approve with edit" in page.inner_text("#approve")
    page.keyboard.press("j")  # no next one: nothing typed, nothing decided
    assert len(reviews(session)) == 2
    assert page.errors == []


# 2. The decision bar stays on screen; the diff on demand; the image zooms; preset reasons; batch approve.
def test_decision_bar_diff_zoom_presets_and_batch(browser, server, data, session) -> None:
    first, second, third = (c.id for c in data.captions)
    data.captions[0].text = " ".join([data.captions[0].text] * 6)  # a long description, as real ones are
    session.commit()
    page = open_review(browser, server, DESKTOP)
    assert on_screen(page, "#approve") and on_screen(page, "#reject")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    assert on_screen(page, "#approve"), "the decision bar scrolls away"
    page.evaluate("window.scrollTo(0, 0)")
    assert page.is_hidden("#diff")  # the caption text is not shown a third time unless asked
    page.keyboard.press("d")
    assert page.is_visible("#diff")
    page.keyboard.press("d")
    assert page.is_hidden("#diff")
    shot(page, "review-1440x900")

    before = page.locator("#image").bounding_box()["width"]
    page.keyboard.press("z")
    page.wait_for_selector("#picture.zoomed")
    assert page.locator("#image").bounding_box()["width"] > before * 1.3
    shot(page, "review-1440x900-zoomed")
    page.keyboard.press("Escape")
    page.wait_for_selector("#picture:not(.zoomed)")

    page.keyboard.press("r")
    page.wait_for_selector("#reason-form:not([hidden])")
    preset = re.sub(r"^\s*2\s*", "", page.locator("#reason-presets label").nth(1).inner_text())
    page.keyboard.press("2")
    assert page.is_checked("#reason-presets input[value='2']")
    assert page.input_value("#reason") == ""  # the key chose the preset, it typed nothing
    shot(page, "review-1440x900-reject")
    page.keyboard.press("Enter")
    title_is(page, second)
    assert reviews(session) == [(first, "reject", preset)]

    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("#batch-approve")
    page.wait_for_selector("#empty:not([hidden])")
    assert asked and "Approve 2 captions" in asked[0]
    assert reviews(session)[1:] == [(second, "approve", ""), (third, "approve", "")]
    assert page.errors == []


# 3. Lead and annotator pages share one look, dark mode included; the lead nav fits a phone.
def test_one_look_dark_mode_and_a_nav_that_fits_a_phone(browser, server, data) -> None:
    looks = []
    for who, path in (("ann", "/task"), ("lena", "/review")):
        page = logged_in_page(browser, server, who, PASSWORD, **DESKTOP, color_scheme="dark")
        page.goto(f"{server}{path}")
        page.wait_for_selector("header a, header .brand")
        page.wait_for_timeout(300)
        looks.append(
            page.evaluate(
                """() => {
                  const s = getComputedStyle(document.body);
                  const t = getComputedStyle(document.querySelector('header'));
                  return {bg: s.backgroundColor, color: s.color, font: s.fontFamily, bar: t.backgroundColor};
                }"""
            )
        )
        shot(page, f"{path.strip('/')}-1440x900-dark")
        page.context.close()
    assert looks[0] == looks[1], looks
    red, green, blue = (int(v) for v in looks[0]["bg"].strip("rgb()").split(",")[:3])
    assert red + green + blue < 150, f"not dark: {looks[0]['bg']}"

    for path in ("/review", "/dashboard", "/admin"):
        page = logged_in_page(browser, server, "lena", PASSWORD, **PHONE)
        page.goto(f"{server}{path}")
        page.wait_for_selector("#topbar nav a")
        page.wait_for_timeout(500)
        assert not scrolls_sideways(page), f"{path} is wider than the phone"
        nav = page.evaluate(
            "(() => { const n = document.querySelector('#topbar nav');"
            " return [n.scrollWidth, n.clientWidth]; })()"
        )
        assert nav[0] <= nav[1], f"{path}: the nav overflows ({nav})"
        for link in page.locator("#topbar nav a").all():
            box = link.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
        shot(page, f"{path.strip('/')}-390x844")
        page.context.close()


# 11. One day of data: the time axis spans about that day; skips, reviewers and waits are shown.
def test_dashboard_axes_fit_and_people_figures(browser, server, data, session) -> None:
    from annotate.services import review

    session.add(
        Assignment(
            image_id=data.images[0].id,
            user_id=data.annotators[1].id,
            project_id=data.project.id,
            status=AssignmentStatus.skipped,
            lease_until=utcnow(),
            skip_reason="image_broken",
        )
    )
    review.decide(session, data.captions[0].id, data.lead, "approve")
    session.commit()
    page = logged_in_page(browser, server, "lena", PASSWORD, **DESKTOP)
    page.goto(f"{server}/dashboard")
    page.wait_for_selector("#chart-throughput[data-x-min]")
    for chart in ("#chart-throughput", "#chart-audio"):
        low = float(page.get_attribute(chart, "data-x-min"))
        high = float(page.get_attribute(chart, "data-x-max"))
        assert 0 < high - low <= 3 * 86400, f"{chart} spans {(high - low) / 86400:.0f} days"
    ticks = " ".join(page.locator("#chart-throughput .u-axis").all_inner_texts())
    assert str(utcnow().year + 1) not in ticks and str(utcnow().year + 2) not in ticks
    page.wait_for_selector("#skips tbody tr")
    assert "image is broken" in page.inner_text("#skips")
    assert "lena" in page.inner_text("#reviewers") and "1" in page.inner_text("#reviewers tbody")
    assert "30 s" in page.inner_text("#upload-wait")
    shot(page, "dashboard-1440x900", full_page=True)
    assert page.errors == []


# 12. The misheard, quiet, half-silent take comes first, flagged, its unsure words underlined.
def test_needs_attention_first_with_unsure_words_underlined(browser, server, data, session, blobs) -> None:
    bad = add_misheard_take(session, blobs, data)
    page = open_review(browser, server, DESKTOP, "?sort=attention")
    title_is(page, bad.id)
    assert page.locator(".queue-item").first.get_attribute("data-id") == str(bad.id)
    badges = page.inner_text("#flags")
    for flag in ("unsure recognition", "quiet", "mostly silent"):
        assert flag in badges
    assert "No flags" not in badges
    page.wait_for_selector("#caption-view .unsure")
    underlined = page.locator("#caption-view .unsure").count()
    assert underlined >= 5
    style = page.evaluate(
        "getComputedStyle(document.querySelector('#caption-view .unsure')).textDecorationLine"
    )
    assert "underline" in style
    assert page.locator("#transcript .word.unsure").count() >= 20
    shot(page, "review-1440x900-attention")
    page.select_option("#f-sort", "oldest")
    title_is(page, data.captions[0].id)
    assert page.errors == []


@pytest.mark.parametrize("size", list(SCREENS))
def test_review_page_fits_each_screen(browser, server, data, size: str) -> None:
    """No sideways scrolling, and the decision buttons on screen, on each screen."""
    page = open_review(browser, server, SCREENS[size])
    assert not scrolls_sideways(page)
    assert on_screen(page, "#approve") and on_screen(page, "#reject")
    shot(page, f"review-{size}")
    assert page.errors == []
