"""The lead pages in a real Chromium (Playwright, Debian's /usr/bin/chromium) against the real app over HTTP.

Review by keyboard and by mouse: approve, edit-and-approve, reject with a reason, j/k; the words lit as
the take plays; filters; the dashboard's charts and live counts; an image upload on the admin page.
Runs on SQLite only: the API underneath is tested on both databases.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Caption, Image, Project, ProjectMode, Review
from tests.support.browser import module_browser
from tests.support.databases import sqlite_url
from tests.support.review_seed import IMAGES, PASSWORD, seed

pytestmark = pytest.mark.browser


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


browser = module_browser(mic=None)


@pytest.fixture
def data(session, blobs):
    return seed(session, blobs)


def _page_as(browser, server: str, name: str):
    # wait_for_function evals in the page, which the CSP forbids; test_browser_csp.py runs under it
    context = browser.new_context(viewport={"width": 1400, "height": 950}, bypass_csp=True)
    response = context.request.post(f"{server}/api/auth/login", data={"name": name, "password": PASSWORD})
    assert response.ok, response.text()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    return page


@pytest.fixture
def lead_page(browser, server, data):
    page = _page_as(browser, server, "lena")
    yield page
    assert page.errors == []  # no uncaught script error on any page
    page.context.close()


def _open_review(page, server: str, query: str = "") -> None:
    page.goto(f"{server}/review{query}")
    page.wait_for_selector("#item-body:not([hidden])")


def _title(page) -> str:
    return page.locator("#item-title").inner_text()


def _reviews(session) -> list[tuple[int, str, str, int | None]]:
    session.expire_all()
    return [
        (r.caption_id, r.decision.value, r.reason, r.reviewer_id)
        for r in session.scalars(select(Review).order_by(Review.id))
    ]


def test_approve_and_move_with_the_keyboard(lead_page, server, data, session) -> None:
    page = lead_page
    first, second, third = (c.id for c in data.captions)
    _open_review(page, server)
    assert _title(page) == f"Caption #{first}"
    assert page.locator(".queue-item").count() == 3
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")  # the image is shown
    page.keyboard.press("j")
    page.wait_for_function(f"document.getElementById('item-title').textContent === 'Caption #{second}'")
    page.keyboard.press("j")
    page.wait_for_function(f"document.getElementById('item-title').textContent === 'Caption #{third}'")
    page.keyboard.press("k")
    page.wait_for_function(f"document.getElementById('item-title').textContent === 'Caption #{second}'")
    page.keyboard.press("a")
    # The approved caption leaves the pending queue and the next one is shown.
    page.wait_for_function("document.querySelectorAll('.queue-item').length === 2")
    page.wait_for_function(f"document.getElementById('item-title').textContent === 'Caption #{third}'")
    assert _reviews(session) == [(second, "approve", "", data.lead.id)]
    session.expire_all()
    assert session.get(Caption, second).status == "approved"
    assert "2 captions" in page.locator("#queue-count").inner_text()


def test_edit_and_approve_shows_the_diff(lead_page, server, data, session) -> None:
    page = lead_page
    first = data.captions[0]
    _open_review(page, server)
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.id") == "caption-text"
    box = page.locator("#caption-text")
    box.fill(box.input_value().replace("Three red boats float", "Three red rowing boats float"))
    assert page.locator("#diff ins", has_text="rowing").count() == 1
    assert "Approve with edit" in page.locator("#approve").inner_text()
    box.press("Control+Enter")
    page.wait_for_function("document.querySelectorAll('.queue-item').length === 2")
    session.expire_all()
    child = session.scalars(select(Caption).where(Caption.parent_id == first.id)).one()
    assert child.kind.value == "edited" and child.status == "approved" and "rowing boats" in child.text
    assert session.get(Caption, first.id).status == "superseded"
    assert _reviews(session) == [(first.id, "edit", "", data.lead.id)]


def test_reject_with_a_reason(lead_page, server, data, session) -> None:
    page = lead_page
    flagged = data.captions[1]
    _open_review(page, server, "?flag=flagged")
    assert page.locator(".queue-item").count() == 1 and _title(page) == f"Caption #{flagged.id}"
    assert page.locator("#flags .badge", has_text="unsupported content").count() == 1
    page.keyboard.press("r")
    page.wait_for_selector("#reason-form:not([hidden])")
    page.keyboard.type("Mentions a pirate flag nobody said")
    page.keyboard.press("Enter")
    page.wait_for_selector("#empty:not([hidden])")
    assert _reviews(session) == [(flagged.id, "reject", "Mentions a pirate flag nobody said", data.lead.id)]


def test_reject_needs_a_reason_and_escape_cancels(lead_page, server, data, session) -> None:
    page = lead_page
    _open_review(page, server)
    page.click("#reject")
    page.wait_for_selector("#reason-form:not([hidden])")
    page.keyboard.press("Enter")  # empty: the browser's required check stops it
    page.keyboard.press("Escape")
    page.wait_for_selector("#reason-form", state="hidden")
    assert _reviews(session) == []


def test_words_light_up_as_the_take_plays(lead_page, server, data) -> None:
    page = lead_page
    _open_review(page, server)
    page.wait_for_function("document.getElementById('audio').readyState >= 1")
    assert page.evaluate("document.getElementById('audio').duration") == pytest.approx(12.5, abs=0.2)
    page.locator("#transcript .word", has_text="lake.").click()
    page.wait_for_function("document.getElementById('audio').currentTime >= 3.2")
    lit = page.locator("#transcript .word.now").inner_text()
    assert lit in {"lake.", "Behind", "them"}  # it plays on from "lake." (3.2 s)
    page.evaluate("document.getElementById('audio').pause()")
    page.evaluate("document.getElementById('audio').currentTime = 8.3")
    page.wait_for_function("document.querySelector('#transcript .word.now')?.textContent === 'house'")
    spoken = page.locator("#transcript .word.spoken").count()
    assert spoken == 25  # "In" … "house": every word started by 8.3 s


def test_an_annotator_is_sent_away(browser, server, data) -> None:
    page = _page_as(browser, server, "ann")
    page.goto(f"{server}/review")
    page.wait_for_url(re.compile(r"/task"))
    page.context.close()


def test_dashboard_shows_charts_tables_and_live_counts(lead_page, server, data, session) -> None:
    page = lead_page
    page.goto(f"{server}/dashboard")
    page.wait_for_selector("#chart-throughput canvas")
    page.wait_for_selector("[data-tile=review_queue]")
    assert page.locator("[data-tile=review_queue] .value").inner_text() == "3"
    rows = page.locator("#stats-table tbody tr")
    assert rows.count() == 3 and rows.nth(0).locator("td").first.inner_text() == "ann"
    assert page.locator("#qc-annotators tbody tr").count() == 2
    # A decision made elsewhere shows up on the next poll.
    from annotate.services import review

    review.decide(session, data.captions[0].id, data.lead, "approve")
    session.commit()
    page.wait_for_function(
        "document.querySelector('[data-tile=review_queue] .value').textContent === '2'", timeout=15000
    )
    page.select_option("#by", "day")
    page.wait_for_function("document.getElementById('table-title').textContent === 'By day'")


def test_admin_uploads_an_image_and_adds_an_annotator(lead_page, server, data, session) -> None:
    page = lead_page
    page.goto(f"{server}/admin")
    page.wait_for_selector("#project-list li.selected")
    page.set_input_files("#file-input", [str(IMAGES / "hubble_deep_field.jpg"), str(IMAGES / "coffee.jpg")])
    page.wait_for_function("document.getElementById('upload-summary').textContent.includes('added')")
    summary = page.locator("#upload-summary").inner_text()
    seeded = {img.source for img in data.images}
    expected_added = sum(str(IMAGES / n) not in seeded for n in ("hubble_deep_field.jpg", "coffee.jpg"))
    assert summary.startswith(f"{expected_added} added")
    session.expire_all()
    assert "hubble_deep_field.jpg" in set(session.scalars(select(Image.source)))
    page.fill("#user-form input[name=name]", "zoe")
    page.click("#user-form button[type=submit]")
    page.wait_for_selector("#user-secret .secret")
    assert page.locator("tr[data-user=zoe]").count() == 1


def test_a_lead_logs_in_through_the_login_page_and_lands_on_review(browser, server, data) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server}/review")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#name", "lena")
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(re.compile(r"/review"))
    page.wait_for_selector("#item-body:not([hidden])")
    assert page.locator("#topbar a[aria-current=page]").inner_text() == "Review"
    context.close()


def _cli(*args: str) -> str:
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "annotate.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200", "VOICECAP_CLEANER": "rules"},
    )
    assert done.returncode == 0, f"voicecap {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_a_lead_reviews_the_demos_real_captions(browser, settings, engine, tmp_path) -> None:
    """The whole way: the demo's project and users, two spoken takes imported, real Whisper and the rules
    cleaner, then the lead reviews in the browser and sees the dashboard."""
    import hashlib
    import json

    from annotate.api.app import create_app
    from annotate.services.demo import setup_demo
    from tests.support.review_seed import SPEECH
    from tests.support.server import live_server

    demo = setup_demo(settings, IMAGES)
    lines = [
        {
            "image": hashlib.sha256((IMAGES / image).read_bytes()).hexdigest(),
            "audio": str(SPEECH / audio),
            "annotator": "demo-annotator",
        }
        for image, audio in (("rocket.jpg", "boats.wav"), ("coffee.jpg", "kitchen.flac"))
    ]
    manifest = tmp_path / "takes.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    _cli("import-audio", "demo", str(manifest), "--json")
    _cli("transcribe", "--json")
    _cli("clean", "--json")

    with live_server(create_app(settings)) as url:
        # wait_for_function evals in the page, which the CSP forbids; test_browser_csp.py runs under it
        context = browser.new_context(viewport={"width": 1400, "height": 950}, bypass_csp=True)
        password = demo.logins["demo-lead"]["password"]
        assert context.request.post(
            f"{url}/api/auth/login", data={"name": "demo-lead", "password": password}
        ).ok
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{url}/review")
        page.wait_for_selector("#item-body:not([hidden])")
        assert page.locator(".queue-item").count() == 2
        # Whisper's own word times drive the highlight: the word lit at 2.3 s of the boats take is "boats".
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        words = page.locator("#transcript .word").all_inner_texts()
        assert "boats" in " ".join(words).lower()
        page.evaluate("document.getElementById('audio').currentTime = 2.3")
        page.wait_for_function("!!document.querySelector('#transcript .word.now')")
        assert page.locator("#transcript .word.now").inner_text().lower().strip(".,") in {
            "red",
            "boats",
            "on",
        }
        page.keyboard.press("a")
        page.wait_for_function("document.querySelectorAll('.queue-item').length === 1")
        page.goto(f"{url}/dashboard")
        page.wait_for_selector("#chart-throughput canvas")
        assert page.locator("[data-tile=review_queue] .value").inner_text() == "1"
        ann = page.locator("#stats-table tbody tr").first
        assert ann.locator("td").first.inner_text() == "demo-annotator"
        assert ann.locator("td").nth(2).inner_text() == "2"  # takes
        assert errors == []
        context.close()


def test_admin_takes_a_dropped_file(lead_page, server, data, session) -> None:
    import base64

    page = lead_page
    page.goto(f"{server}/admin")
    page.wait_for_selector("#project-list li.selected")
    encoded = base64.b64encode((IMAGES / "rocket.jpg").read_bytes()).decode()
    dropped = page.evaluate_handle(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "rocket.jpg", { type: "image/jpeg" }));
            return transfer;
        }""",
        encoded,
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})
    page.wait_for_function("document.getElementById('upload-summary').textContent.includes('added')")
    assert page.locator("#upload-summary").inner_text().startswith("1 added")
    session.expire_all()
    assert (
        session.scalars(select(Image).where(Image.source == "rocket.jpg")).one().project_id == data.project.id
    )


def test_admin_makes_a_point_project_in_arabic_with_spanish_captions(lead_page, server, session) -> None:
    page = lead_page
    page.goto(f"{server}/admin")
    page.wait_for_selector("#project-list li.selected")
    page.click("#new-project")
    assert page.locator("#labels-field").is_hidden()
    page.fill("#project-form input[name=name]", "Harbour points")
    page.select_option("#project-mode", "point")
    assert page.locator("#labels-field").is_visible()
    page.fill("#project-form textarea[name=labels]", "deck chair\n person \n\n")
    page.select_option("#interface-language", "ar")
    page.fill("#project-form input[name=caption_language]", "es")
    page.click("#project-save")
    page.wait_for_selector("#project-list li.selected >> text=Harbour points")
    session.expire_all()
    project = session.scalar(select(Project).where(Project.name == "Harbour points"))
    assert project is not None
    assert (project.mode, project.labels) == (ProjectMode.point, ["deck chair", "person"])
    assert (project.interface_language, project.caption_language) == ("ar", "es")
    session.rollback()
    # Editing shows what is stored; a bad caption language is refused with the server's words.
    assert page.locator("#interface-language").input_value() == "ar"
    assert page.locator("#project-form textarea[name=labels]").input_value() == "deck chair\nperson"
    page.fill("#project-form input[name=caption_language]", "klingon")
    page.click("#project-save")
    page.wait_for_function("document.getElementById('project-status').textContent.includes('klingon')")
    page.fill("#project-form input[name=caption_language]", "")
    page.select_option("#project-mode", "narrate")
    assert page.locator("#labels-field").is_hidden()
    page.click("#project-save")
    page.wait_for_function("document.getElementById('project-status').textContent === ''")
    page.wait_for_function("document.getElementById('project-mode').value === 'narrate'")
    session.expire_all()
    project = session.scalar(select(Project).where(Project.name == "Harbour points"))
    assert project is not None
    assert (project.mode, project.labels, project.caption_language) == (ProjectMode.narrate, [], None)
    session.rollback()
