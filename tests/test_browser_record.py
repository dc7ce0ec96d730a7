"""A real Chromium records from a fake microphone (a WAV of espeak-ng speech) against `voicecap serve` in
a subprocess: log in, record, play back, submit, see the next image; then the server is killed mid-upload
and restarted, and the take is stored exactly once after the page retries.

tests/fixtures/mic/describe.wav: `espeak-ng -v en-us -s 150 -w x.wav "A red boat floats on a calm blue
lake. Two tall trees stand behind a small white house."` then `sox x.wav -r 16000 -c 1 -b 16 describe.wav`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from db.models import Assignment, AssignmentStatus, Recording
from tests.support.browser import CHROMIUM, launch, playwright_driver
from tests.support.browser import shot as save_shot
from tests.support.databases import require
from tests.support.server import free_port
from tests.test_assignments import add_images, make_project

pytestmark = pytest.mark.browser


class ServeProcess:
    """`voicecap serve` as a real process (so it can really be killed), on a fixed port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "annotate.cli.main", "serve", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),  # the settings fixture points VOICECAP_* at this test's database
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voicecap serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"voicecap serve did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: no graceful shutdown, like a crash
            self.process.wait(10)


@pytest.fixture
def serve(engine, tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(free_port(), tmp_path / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def browser():
    """Chromium whose microphone is tests/fixtures/mic/describe.wav (tests/support/browser.py)."""
    with playwright_driver() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


def count(session, *where) -> int:
    session.expire_all()
    value = session.scalar(select(func.count()).select_from(Recording).where(*where))
    session.commit()  # end the read: SQLite's BEGIN IMMEDIATE would block the server's writes
    return int(value or 0)


def shot(page, name: str) -> None:
    save_shot(page, f"record-{name}")


def record(page, seconds: float = 2.8) -> None:
    page.keyboard.press("Space")
    page.wait_for_function("document.body.dataset.state === 'recording'")
    page.wait_for_timeout(int(seconds * 1000))
    page.keyboard.press("Space")
    page.wait_for_function("document.body.dataset.state === 'take'", timeout=10_000)


def current_image(page) -> str:
    return str(page.get_attribute("#image", "data-image-id"))


def wait_for_next_image(page, previous: str, timeout: float = 60_000) -> str:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "prev => document.body.dataset.state === 'idle' && "
            "document.getElementById('image').dataset.imageId !== prev && "
            "document.getElementById('image').naturalWidth > 0",
            arg=previous,
            timeout=timeout,
        )
    except PlaywrightTimeout:
        seen = page.evaluate(
            "() => ({state: document.body.dataset.state,"
            " banner: document.getElementById('banner').textContent,"
            " take: document.getElementById('take-message').textContent,"
            " image: document.getElementById('image').dataset.imageId})"
        )
        raise AssertionError(f"no next image; the page shows {seen}") from None
    return current_image(page)


def test_record_play_submit_and_survive_a_server_crash(serve, browser, session, blobs, make_user) -> None:
    project = make_project(session, name="Everyday scenes", min_seconds=2, max_seconds=20)
    add_images(session, blobs, project, 4)
    make_user("ann")
    session.commit()

    # wait_for_function evals in the page, which the CSP forbids; test_browser_csp.py runs under it
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)) or print("pageerror:", error))
    page.on("console", lambda message: print("console:", message.type, message.text))
    page.on("response", lambda r: print("response:", r.request.method, r.url, r.status))
    page.on("requestfailed", lambda r: print("failed:", r.method, r.url, r.failure))

    # Log in: an annotator lands on the task page.
    page.goto(f"{serve.url}/login")
    page.fill("#name", "ann")
    page.fill("#password", "correct-horse")
    page.click("#login-button")
    page.wait_for_url("**/task")
    page.wait_for_function("document.getElementById('image').naturalWidth > 0")
    assert page.text_content("#project-name") == "Everyday scenes"
    assert "first glance" in (page.text_content("#questions") or "")
    assert page.is_disabled("#submit")
    assert page.is_hidden("#nav")  # the leads' nav is not shown to annotators
    first_image = current_image(page)
    shot(page, "1-task")

    # Record with the fake microphone: the meter moves, the timer runs.
    page.keyboard.press("Space")
    page.wait_for_function("document.body.dataset.state === 'recording'")
    page.wait_for_function("parseFloat(document.getElementById('meter-fill').dataset.level || 0) > 0.02")
    page.wait_for_timeout(2800)
    shot(page, "2-recording")
    page.keyboard.press("Space")
    page.wait_for_function("document.body.dataset.state === 'take'", timeout=10_000)
    assert page.is_enabled("#submit")
    take_seconds = float((page.text_content("#take-info") or "0").split(" s")[0])
    assert 2.8 < take_seconds < 5

    # Play it back (through an AudioContext) to the end.
    page.click("#play")
    page.wait_for_function("document.body.dataset.played === 'true'", timeout=15_000)
    shot(page, "3-take")

    # Submit with Enter: the next image comes, today's counter moves.
    page.keyboard.press("Enter")
    second_image = wait_for_next_image(page, first_image)
    page.wait_for_function("document.getElementById('today').dataset.recordings === '1'")
    assert count(session) == 1
    stored = session.scalar(select(Recording))
    session.commit()
    assert stored.content_type == "audio/webm" and stored.source == "browser"
    assert abs(stored.duration_seconds - take_seconds) < 0.6
    assert stored.silence_fraction < 0.5 and stored.loudness_dbfs > -45
    assert blobs.exists(stored.original_key) and blobs.exists(stored.wav_key)

    # Kill the server while the upload is still streaming (upload throttled to 4 KB/s).
    record(page)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 4 * 1024},
    )
    with page.expect_request(lambda request: request.method == "PUT"):
        page.keyboard.press("Enter")
    page.wait_for_timeout(700)
    serve.kill()
    assert count(session) == 1  # died before storing anything
    page.wait_for_selector("#banner:has-text('saved on this device')", timeout=20_000)
    shot(page, "4-retrying")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    serve.start()  # same port, same database
    third_image = wait_for_next_image(page, second_image)
    assert count(session) == 2
    session.expire_all()
    second_assignment = session.scalar(select(Assignment).where(Assignment.image_id == int(second_image)))
    session.commit()
    assert second_assignment.status == AssignmentStatus.submitted
    assert count(session, Recording.assignment_id == second_assignment.id) == 1

    # The server stores a take but the answer is lost; the page is reloaded before it learns the
    # outcome. The outbox resends the same UUID on load and the server keeps one recording.
    record(page)
    attempts: list[str] = []

    def lose_answer(route) -> None:
        attempts.append(route.request.url)
        if len(attempts) == 1:
            route.fetch()  # reaches the server, which stores it
        route.abort("connectionreset")

    page.route("**/api/recordings/**", lose_answer)
    page.keyboard.press("Enter")
    page.wait_for_selector("#banner:has-text('saved on this device')", timeout=20_000)
    assert count(session) == 3
    page.unroute("**/api/recordings/**")
    page.reload()
    fourth_image = wait_for_next_image(page, "")
    assert fourth_image not in {first_image, second_image, third_image}
    page.wait_for_function("document.body.dataset.pendingUploads === '0'", timeout=30_000)
    page.wait_for_function("document.getElementById('today').dataset.recordings === '3'")
    assert count(session) == 3
    uuids = session.scalars(select(Recording.client_uuid)).all()
    session.commit()
    assert len(set(uuids)) == 3
    assert errors == []
    context.close()


def test_denied_microphone_gets_a_clear_message(serve, session, blobs, make_user) -> None:
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    project = make_project(session)
    add_images(session, blobs, project, 1)
    make_user("ann")
    with sync_playwright() as playwright:
        # No fake-UI flag: headless Chromium answers the permission prompt with "deny".
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--use-fake-device-for-media-stream"]
        )
        try:
            page = browser.new_page(bypass_csp=True)  # see the note on bypass_csp above
            page.goto(f"{serve.url}/login")
            page.fill("#name", "ann")
            page.fill("#password", "correct-horse")
            page.click("#login-button")
            page.wait_for_url("**/task")
            page.wait_for_function("document.body.dataset.state === 'idle'")
            page.click("#record")
            page.wait_for_selector("#mic-message:visible", timeout=15_000)
            assert "Microphone access is blocked" in (page.text_content("#mic-message") or "")
            assert page.evaluate("document.body.dataset.state") == "idle"
        finally:
            browser.close()


def test_short_take_cannot_be_submitted_and_recording_stops_at_the_maximum(
    serve, browser, session, blobs, make_user
) -> None:
    project = make_project(session, min_seconds=2, max_seconds=4)
    add_images(session, blobs, project, 2)
    make_user("ann")
    page = browser.new_page(bypass_csp=True)  # see the note on bypass_csp above
    page.goto(f"{serve.url}/login")
    page.fill("#name", "ann")
    page.fill("#password", "correct-horse")
    page.click("#login-button")
    page.wait_for_url("**/task")
    page.wait_for_function("document.body.dataset.state === 'idle'")
    first_image = current_image(page)

    # Under the minimum (0.5 s + the 0.5 s tail): kept for listening, but Submit stays disabled.
    record(page, seconds=0.5)
    assert page.is_disabled("#submit")
    assert "at least 0:02" in (page.text_content("#take-message") or "")
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert count(session) == 0

    # Re-record and keep talking: the recorder stops itself at the 4 s maximum.
    page.keyboard.press("r")
    page.wait_for_function("document.body.dataset.state === 'recording'")
    page.wait_for_function("document.body.dataset.state === 'take'", timeout=15_000)
    assert "maximum" in (page.text_content("#take-message") or "")
    take_seconds = float((page.text_content("#take-info") or "0").split(" s")[0])
    assert 3.5 <= take_seconds <= 4.6
    page.keyboard.press("Enter")
    wait_for_next_image(page, first_image)
    assert count(session) == 1
    stored = session.scalar(select(Recording))
    session.commit()
    assert stored.duration_seconds <= 4 + 0.7
    page.close()
