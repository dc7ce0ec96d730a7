"""What the browser tests share: Chromium with a WAV file as the microphone, the three screens the UI is
checked at, logging in, geometry checks and screenshots.

Screenshots go to $VOICECAP_TEST_SCREENSHOTS, or to test-screenshots/ in the checkout (git-ignored), so a
person can look at the pages the tests saw.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.databases import require

CHROMIUM = Path("/usr/bin/chromium")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MIC = FIXTURES / "mic" / "describe.wav"
SCREENSHOTS = Path(
    os.environ.get("VOICECAP_TEST_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "test-screenshots"
)

# The screens the issue-11 faults were found on: a desktop, a laptop and a phone (touch, no hover).
DESKTOP: dict[str, Any] = {"viewport": {"width": 1440, "height": 900}}
LAPTOP: dict[str, Any] = {"viewport": {"width": 1366, "height": 768}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 2,
}
SCREENS = {"1440x900": DESKTOP, "1366x768": LAPTOP, "390x844": PHONE}


@contextmanager
def playwright_driver() -> Iterator[Any]:
    """Playwright's sync driver (one per thread: launch every browser of a module from it)."""
    require(CHROMIUM.exists() or shutil.which("chromium") is not None, f"Chromium is missing at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright Python package is not installed")
    with sync_playwright() as playwright:
        yield playwright


def launch(playwright: Any, mic: Path | None = MIC) -> Any:
    """A headless Chromium; with `mic`, getUserMedia is granted and reads that WAV file."""
    args = ["--autoplay-policy=no-user-gesture-required"]
    if mic is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}",
        ]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)


def module_browser(mic: Path | None = MIC) -> Any:
    """A module-scoped `browser` fixture: one Chromium (with `mic` as its microphone; None: no
    microphone) for every test of the module. Use as `browser = module_browser()` in a test module."""
    import pytest

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Any]:
        with playwright_driver() as playwright:
            launched = launch(playwright, mic=mic)
            try:
                yield launched
            finally:
                launched.close()

    return browser


def logged_in_page(browser: Any, server: str, name: str, password: str, **context: Any) -> Any:
    """A new page in its own context, logged in through the API; uncaught errors collect in page.errors.

    The page runs with the CSP bypassed: the tests' wait_for_function evaluates a string in the page,
    which `script-src 'self'` forbids. tests/test_browser_csp.py drives the pages under the real CSP.
    """
    ctx = browser.new_context(**{"bypass_csp": True, **context})
    response = ctx.request.post(f"{server}/api/auth/login", data={"name": name, "password": password})
    assert response.ok, response.text()
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    return page


def shot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# True when the element's centre is on screen and it is what a person would hit there (not covered,
# not scrolled away inside a scrolling box).
ON_SCREEN = """(selector) => {
  const element = document.querySelector(selector);
  if (!element) return false;
  const box = element.getBoundingClientRect();
  if (box.width === 0 || box.height === 0) return false;
  const x = box.left + box.width / 2;
  const y = box.top + Math.min(box.height / 2, 20);
  if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return false;
  const hit = document.elementFromPoint(x, y);
  return !!hit && (hit === element || element.contains(hit) || hit.contains(element));
}"""


def on_screen(page: Any, selector: str) -> bool:
    return bool(page.evaluate(ON_SCREEN, selector))


def scrolls_sideways(page: Any) -> bool:
    """Wider than the screen? (On a phone the browser widens its layout to the content instead of
    scrolling, so innerWidth is no yardstick: the screen's width is.)"""
    width = page.viewport_size["width"]
    return bool(page.evaluate("(width) => document.documentElement.scrollWidth > width", width))


def policy_problems(page: Any) -> list[str]:
    """A list that fills with the page's uncaught errors and every CSP refusal Chromium logs; a test
    under the real Content-Security-Policy asserts it stays empty."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    return problems
