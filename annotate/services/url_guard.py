"""Which addresses an ingest URL may reach: public ones only, unless a lab network is allowed.

A URL list is input from whoever runs the ingest, but the fetch runs on the server: without this check
`http://169.254.169.254/…` (cloud metadata), `http://localhost:5432/` or a redirect to either would be
fetched from inside the network. The host is resolved and every address checked before each request,
and redirects are followed by hand so that every hop is checked too.

What remains: a name whose DNS answer changes between this check and the connection (DNS rebinding)
could still reach a private address; closing that needs connecting to the checked address itself.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

MAX_REDIRECTS = 5

Resolver = Callable[[str, int], list[str]]


class UrlRefused(ValueError):
    """The URL may not be fetched; the message says why."""


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused(f"cannot resolve {host}: {exc.strerror}") from None
    return [str(info[4][0]) for info in infos]


def address_kind(address: str) -> str | None:
    """Why an address is not public ("loopback", "private", ...), or None for a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None if ip.is_global else "not public"


def check_url(url: str, allow_private: bool, resolver: Resolver = resolve) -> None:
    """Raise UrlRefused unless `url` is http(s) and every address its host resolves to may be reached."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"only http and https URLs with a host are fetched, not {url!r}")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlRefused(f"bad port in {url!r}") from None
    for address in resolver(parts.hostname, port):
        kind = address_kind(address)
        if kind is not None:
            raise UrlRefused(
                f"{parts.hostname} is a {kind} address ({address}); set "
                "VOICECAP_INGEST_ALLOW_PRIVATE_URLS=true to fetch from a lab network"
            )
