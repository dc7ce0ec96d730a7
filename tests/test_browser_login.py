"""The login page follows `next` only to a path of its own origin (issue #10, item 3), in Chromium.

Requests to any host but the test server are aborted and recorded, so nothing leaves loopback."""

from __future__ import annotations

import re

import pytest

from tests.support.review_seed import PASSWORD
from tests.test_browser_review import browser, data, db_url  # noqa: F401  (fixtures)

OFF_SITE = [
    "/%5Cevil.invalid/",
    "/%09/evil.invalid/",
    "//evil.invalid/",
    "https://evil.invalid/",
    "/\\/evil.invalid",
]


def _context(browser, server: str):  # noqa: F811
    context = browser.new_context()
    left: list[str] = []

    def only_loopback(route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    return context, left


@pytest.mark.parametrize("next_path", OFF_SITE)
def test_a_logged_in_user_is_not_sent_off_site(browser, server, data, next_path) -> None:  # noqa: F811
    context, left = _context(browser, server)
    assert context.request.post(f"{server}/api/auth/login", data={"name": "lena", "password": PASSWORD}).ok
    page = context.new_page()
    page.goto(f"{server}/login?next={next_path}")
    page.wait_for_url(re.compile(r"/review"))
    assert page.url.startswith(server + "/review") and left == []
    context.close()


def test_the_login_form_follows_a_same_origin_next_and_refuses_an_escape(browser, server, data) -> None:  # noqa: F811
    cases = (
        ("%2Fdashboard%3Fproject%3D1%23top", "/dashboard?project=1#top"),
        ("/%09/evil.invalid/", "/review"),
    )
    for next_path, landing in cases:
        context, left = _context(browser, server)
        page = context.new_page()
        page.goto(f"{server}/login?next={next_path}")
        page.fill("#name", "lena")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_url(server + landing)
        assert left == []
        context.close()
