"""Login limits (issue #10 item 3, issue #15 part 2): counted per (address, name) and per address in the
database, so a stranger cannot lock the real user out, and several API processes share one count."""

from __future__ import annotations

import httpx

from tests.support.server import live_server


def client_from(address: str, base_url: str) -> httpx.Client:
    """Connect from another loopback address (all of 127/8 is local), as a second machine would."""
    return httpx.Client(base_url=base_url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def attempt(client: httpx.Client, name: str, password: str) -> int:
    return client.post("/api/auth/login", json={"name": name, "password": password}).status_code


def test_guesses_from_one_address_do_not_lock_the_user_out_elsewhere(server, make_user) -> None:
    make_user("ann")
    attacker, owner = client_from("127.0.0.2", server), client_from("127.0.0.3", server)
    codes = [attempt(attacker, "ann", "wrong-pass") for _ in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    assert attempt(owner, "ann", "correct-horse") == 200
    assert attempt(attacker, "ann", "correct-horse") == 429  # still waiting out the limit


def test_one_address_is_limited_across_all_names(app, settings, make_user) -> None:
    app.state.login_limiter.per_address = 15
    with live_server(app) as url:
        sprayer = client_from("127.0.0.4", url)
        codes = [attempt(sprayer, f"name{n}", "wrong-pass") for n in range(16)]
    assert codes[:15] == [401] * 15 and codes[15] == 429


def test_two_api_processes_share_one_count(app, settings, make_user) -> None:
    from annotate.api.app import create_app

    make_user("ann")
    with live_server(app) as first, live_server(create_app(settings)) as second:
        one, two = client_from("127.0.0.5", first), client_from("127.0.0.5", second)
        codes = [attempt(one if n % 2 else two, "ann", "wrong-pass") for n in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
