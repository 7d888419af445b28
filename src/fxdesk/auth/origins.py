"""Which origins and Host names fxdesk serves: the CSRF / WebSocket origin check, trusted hosts.

An origin is compared whole (scheme, host, port) against the origins fxdesk is served at:
`FXDESK_PUBLIC_URL` when set, otherwise the address the connection actually arrived at (the
socket `fxdesk serve` listens on, never the request's Host header), plus `FXDESK_ALLOWED_ORIGINS`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.types import Scope

if TYPE_CHECKING:
    from fxdesk.config import Settings

DEFAULT_PORTS = {"http": 80, "https": 443}
WEB_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

# scheme://host[:port] with nothing else: no user info, path, query or fragment.
_ORIGIN = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9._~-]+)(?::(?P<port>\d{1,5}))?/?$"
)
# A Host header: a name or an IP literal, an optional port, nothing else.
_HOST = re.compile(r"^(?P<host>\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::\d{1,5})?$")


def _host_form(host: str) -> str:
    """The host as it appears in an origin: lower-case, no trailing dot, IPv6 in brackets."""
    host = host.strip("[]").rstrip(".").lower()
    return f"[{host}]" if ":" in host else host


def origin_of(scheme: str, host: str, port: int | None) -> str:
    """`scheme://host[:port]`, the port left out when it is the scheme's default."""
    scheme = WEB_SCHEMES.get(scheme, scheme)
    suffix = "" if port is None or port == DEFAULT_PORTS.get(scheme) else f":{port}"
    return f"{scheme}://{_host_form(host)}{suffix}"


def normalize_origin(value: str) -> str | None:
    """The canonical form of an http(s) origin, or None for anything else (`null` included)."""
    match = _ORIGIN.match(value.strip().lower())
    if match is None or match["scheme"] not in DEFAULT_PORTS:
        return None
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        return None
    return origin_of(match["scheme"], match["host"], port)


def _local_ip(scope: Scope) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int] | None:
    """The IP address and port this connection arrived at (the server's socket), if known."""
    server = scope.get("server")
    if not server or server[1] is None:
        return None
    try:
        ip = ipaddress.ip_address(str(server[0]))
    except ValueError:
        return None  # a Unix socket, or a test transport naming a host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip, int(server[1])


def served_origins(connection: HTTPConnection, settings: Settings) -> frozenset[str]:
    """The origins this request's page may come from if it is fxdesk's own.

    The public URL's origin when set; otherwise the scheme, IP address and port the connection
    arrived at (loopback also under its names `localhost` and `[::1]`), so `fxdesk serve` works
    from its own page in development without trusting anything the client wrote.
    """
    if settings.public_origin is not None:
        return frozenset({settings.public_origin})
    local = _local_ip(connection.scope)
    if local is None:
        return frozenset()
    ip, port = local
    scheme = WEB_SCHEMES.get(connection.scope.get("scheme", "http"), "http")
    names = LOOPBACK_NAMES if ip.is_loopback else (str(ip),)
    return frozenset(origin_of(scheme, name, port) for name in names)


def origin_allowed(connection: HTTPConnection, settings: Settings) -> bool:
    """True when the request comes from an origin fxdesk serves or allows, or is not cross-site.

    A browser always sends `Origin` on cross-origin writes and WebSocket handshakes; a request
    without it and without `Sec-Fetch-Site: cross-site` comes from a non-browser client that
    cannot have been forged by a third-party page. `Origin: null` is never allowed.
    """
    headers = connection.headers
    origin = headers.get("origin")
    if origin is None:
        return headers.get("sec-fetch-site", "").lower() != "cross-site"
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    return normalized in settings.allowed_origins or normalized in served_origins(
        connection, settings
    )


class TrustedHosts:
    """The Host header values fxdesk answers to; anything else is refused before routing.

    Allowed: the public URL's host, the loopback names, `FXDESK_ALLOWED_HOSTS` (`*.example.com`
    matches subdomains, `*` any host), and an IP address the connection really arrived at (so a
    probe by the instance's own address works).
    """

    def __init__(self, settings: Settings) -> None:
        names = {_host_form(name) for name in LOOPBACK_NAMES}
        if settings.public_host is not None:
            names.add(_host_form(settings.public_host))
        self.any = False
        self.suffixes: list[str] = []
        for entry in settings.allowed_hosts:
            if entry == "*":
                self.any = True
            elif entry.startswith("*."):
                self.suffixes.append(_host_form(entry[1:]))
            else:
                names.add(_host_form(entry))
        self.names = frozenset(names)

    def allows(self, scope: Scope) -> bool:
        host = host_header(scope)
        if host is None:
            return False
        if self.any or host in self.names or any(host.endswith(s) for s in self.suffixes):
            return True
        local = _local_ip(scope)
        return local is not None and host == _host_form(str(local[0]))


def host_header(scope: Scope) -> str | None:
    """The Host header's host part (lower-case, IPv6 in brackets), or None when malformed."""
    for name, value in scope["headers"]:
        if name == b"host":
            match = _HOST.match(value.decode("latin-1").strip().lower())
            return None if match is None else _host_form(match["host"])
    return None
