"""Ingest stays inside what the lead meant (issue #10, item 4): URL lists reach only public addresses,
on every redirect hop; manifests read only files under their own folder unless --allow-outside.

Every request here goes to loopback. The redirect tests treat 127.0.0.1 (the test server) as public and
check that hops to other loopback names are refused before any connection is tried."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from annotate.services import url_guard
from tests.support.cli import run_json
from tests.test_ingest import EXAMPLE_IMAGES, rows, run
from tests.test_ingest import project_id as project_id  # a fixture


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.8", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("100.64.0.1", "not public"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_addresses_are_classified(address: str, kind: str | None) -> None:
    assert url_guard.address_kind(address) == kind


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return {"mixed.example": ["93.184.216.34", "10.0.0.8"], "public.example": ["93.184.216.34"]}[host]

    with pytest.raises(url_guard.UrlRefused, match=r"mixed\.example is a private address"):
        url_guard.check_url("http://mixed.example/a.jpg", False, resolver)
    url_guard.check_url("https://public.example/a.jpg", False, resolver)  # no request is made
    url_guard.check_url("http://mixed.example/a.jpg", True, resolver)  # a lab network may
    with pytest.raises(url_guard.UrlRefused, match="only http and https"):
        url_guard.check_url("file:///etc/passwd", True, resolver)


class Redirector(http.server.SimpleHTTPRequestHandler):
    """Serves its folder; /to/<url> redirects there; /loop redirects to itself; /hop/<n> n hops then coins."""

    def do_GET(self) -> None:
        if self.path.startswith("/to/"):
            self._redirect(self.path[len("/to/") :])
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path.startswith("/hop/"):
            left = int(self.path.rsplit("/", 1)[1])
            self._redirect(f"/hop/{left - 1}" if left > 1 else "/coins.jpg")
        else:
            super().do_GET()

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def redirector(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    for name in ("rocket.jpg", "coins.jpg"):
        shutil.copy(EXAMPLE_IMAGES / name, root / name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Redirector(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_every_redirect_hop_is_checked(
    engine,
    blobs,
    settings,
    session,
    project_id,
    tmp_path,
    redirector,
    monkeypatch,
) -> None:
    real = url_guard.address_kind
    monkeypatch.setattr(url_guard, "address_kind", lambda a: None if a == "127.0.0.1" else real(a))
    port = redirector.rsplit(":", 1)[1]
    urls = tmp_path / "urls.txt"
    urls.write_text(
        f"{redirector}/rocket.jpg\n"
        f"{redirector}/hop/3\n"  # three hops, then coins.jpg
        f"{redirector}/to/http://127.0.0.2:{port}/rocket.jpg\n"
        f"{redirector}/to/http://[::1]:{port}/rocket.jpg\n"
        f"{redirector}/loop\n"
    )
    summary = run(engine, blobs, settings, project_id, urls)
    assert summary.added == 2
    reasons = [r.reason for r in summary.rejected]
    assert reasons[0].startswith("URL refused: 127.0.0.2 is a loopback address")
    assert reasons[1].startswith("URL refused: ::1 is a loopback address")
    assert reasons[2] == "download failed: more than 5 redirects"
    assert sorted(Path(i.source).name for i in rows(session, project_id)) == ["3", "rocket.jpg"]


def test_the_cli_refuses_loopback_urls_unless_the_setting_allows_them(
    settings, engine, tmp_path, redirector
) -> None:
    run_json("project", "create", "birds")
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{redirector}/rocket.jpg\n")
    refused = run_json("ingest", "birds", str(urls))
    assert refused["added"] == 0
    assert "127.0.0.1 is a loopback address" in refused["rejected"][0]["reason"]
    assert "VOICECAP_INGEST_ALLOW_PRIVATE_URLS" in refused["rejected"][0]["reason"]
    allowed = run_json("ingest", "birds", str(urls), env={"VOICECAP_INGEST_ALLOW_PRIVATE_URLS": "true"})
    assert allowed["added"] == 1


def test_a_manifest_reads_only_under_its_folder_unless_allowed(settings, engine, tmp_path) -> None:
    run_json("project", "create", "birds")
    folder = tmp_path / "batch"
    (folder / "imgs").mkdir(parents=True)
    shutil.copy(EXAMPLE_IMAGES / "rocket.jpg", folder / "imgs" / "rocket.jpg")
    shutil.copy(EXAMPLE_IMAGES / "coins.jpg", tmp_path / "outside.jpg")
    (folder / "imgs" / "link.jpg").symlink_to(EXAMPLE_IMAGES / "coffee.jpg")
    absolute = EXAMPLE_IMAGES / "astronaut.jpg"
    manifest = folder / "manifest.csv"
    manifest.write_text(
        f"path\nimgs/rocket.jpg\n../outside.jpg\n{absolute}\nimgs/link.jpg\nimgs/../imgs/rocket.jpg\n"
    )
    confined = run_json("ingest", "birds", str(manifest))
    assert (confined["added"], confined["duplicate"]) == (1, 1)
    reasons = [r["reason"] for r in confined["rejected"]]
    assert reasons[0] == "refused: '../outside.jpg' is outside the manifest's folder; " + (
        "give --allow-outside to read files outside the manifest's folder"
    )
    assert reasons[1].startswith(f"refused: absolute path '{absolute}'")
    assert reasons[2].startswith("refused: 'imgs/link.jpg' is outside the manifest's folder")
    allowed = run_json("ingest", "birds", str(manifest), "--allow-outside")
    assert (allowed["added"], allowed["duplicate"], allowed["rejected"]) == (3, 2, [])
