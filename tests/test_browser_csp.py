"""Every page works under the real Content-Security-Policy (no bypass): an annotator records a take, a
lead reviews, opens the dashboard and the admin page, and Chromium reports no CSP violation.

Only selectors and Playwright actions are used here: `wait_for_function` evaluates its predicate
with eval in the page, which this very policy forbids."""

from __future__ import annotations

import pytest

from tests.support.browser import policy_problems
from tests.support.review_seed import PASSWORD, seed
from tests.test_assignments import add_images, make_project
from tests.test_browser_record import browser, serve  # noqa: F401  (fixtures: Chromium with a fake mic)

pytestmark = pytest.mark.browser


def strict_page(browser, url: str, name: str, password: str):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = policy_problems(page)
    page.goto(f"{url}/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#login-button")
    return page, problems


def test_pages_work_under_the_csp(serve, browser, session, blobs, make_user) -> None:  # noqa: F811
    seed(session, blobs, takes=2)
    project = make_project(session, name="Everyday scenes", min_seconds=2, max_seconds=20)
    add_images(session, blobs, project, 2)
    session.commit()

    page, problems = strict_page(browser, serve.url, "ann", PASSWORD)
    page.wait_for_url("**/task")
    page.wait_for_selector("#image[data-image-id]")
    page.keyboard.press("Space")
    page.wait_for_selector("body[data-state='recording']")
    page.wait_for_timeout(2800)
    page.keyboard.press("Space")
    page.wait_for_selector("body[data-state='take']", timeout=10_000)
    assert page.is_enabled("#submit")
    page.context.close()

    page, lead_problems = strict_page(browser, serve.url, "lena", PASSWORD)
    page.wait_for_url("**/review")
    page.wait_for_selector("#item-body:not([hidden])")
    page.wait_for_selector(".queue-item")
    page.goto(f"{serve.url}/dashboard")
    page.wait_for_selector("#topbar a[aria-current=page]")
    page.wait_for_selector("canvas")  # uPlot drew a chart
    page.goto(f"{serve.url}/admin")
    page.wait_for_selector("#users tbody tr")
    assert page.locator("#users tbody tr").count() >= 3
    page.context.close()
    assert problems == [] and lead_problems == []
