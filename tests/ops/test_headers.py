"""Trusted hosts (unexpected Host values get 400), HSTS on every response when cookies are
Secure, and the page's Content-Security-Policy naming fxdesk's own sockets only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fxdesk.app import create_app
from fxdesk.config import Settings
from fxdesk.users.models import Role
from tests.conftest import UserFactory
from tests.factories import asgi_client, make_settings, sign_in
from tests.live import serving

HSTS = "max-age=31536000; includeSubDomains"
INVALID_HOST = {"detail": "Invalid Host header"}
FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:443",
    "testserver.evil.example",
    "eviltestserver",
    "testserver@evil.example",
    "testserver/evil",
    "testserver:443:443",
    "evil.example#testserver",
    "[::2]",
    "10.0.0.1:8000",  # an address, but not the one this request arrived at
    "",
]
# The fast rates read is answered before routing: it is refused all the same.
PATHS = ["/health", "/api/v1/auth/me", "/", "/api/v1/rates/latest", "/openapi.json", "/docs"]


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[object]:
    """A factory of apps with given settings, asked without their lifespan (no database use)."""
    clients: list[httpx.AsyncClient] = []

    def factory(base_url: str = "https://testserver", **overrides: object) -> httpx.AsyncClient:
        settings = make_settings(tmp_path, tmp_path / "unused.db", **overrides)
        client = asgi_client(create_app(settings, migrate=False), base_url=base_url)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
@pytest.mark.parametrize("path", PATHS)
async def test_unexpected_hosts_are_refused(
    host: str, path: str, client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    await sign_in(app, client, await make_user(role=Role.admin))
    response = await client.get(path, headers={"Host": host})
    assert (response.status_code, response.json()) == (400, INVALID_HOST)
    assert response.headers["strict-transport-security"] == HSTS
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_refused_host_changes_nothing(
    client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    await sign_in(app, client, await make_user())
    response = await client.post("/api/v1/auth/logout-all", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert (await client.get("/api/v1/auth/me")).status_code == 200


@pytest.mark.parametrize(
    "host",
    ["testserver", "TESTSERVER", "testserver:443", "localhost", "localhost.", "127.0.0.1:8000"],
)
async def test_known_hosts_are_answered(host: str, client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"Host": host})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "host", "expected"),
    [
        ({"public_url": "https://fx.example.com"}, "fx.example.com", 200),
        ({"public_url": "https://fx.example.com:8443/"}, "FX.example.com:8443", 200),
        ({"public_url": "https://fx.example.com"}, "www.fx.example.com", 400),
        ({}, "fx.example.com", 400),
        ({}, "[::1]:8000", 200),
        ({"allowed_hosts": ["*.example.com"]}, "a.example.com", 200),
        ({"allowed_hosts": ["*.example.com"]}, "a.b.example.com", 200),
        ({"allowed_hosts": ["*.example.com"]}, "example.com", 400),
        ({"allowed_hosts": ["*.example.com"]}, "aexample.com", 400),
        ({"allowed_hosts": ["Other.Example"]}, "other.example", 200),
        ({"allowed_hosts": ["*"]}, "anything.example", 200),
    ],
)
async def test_allowed_hosts_follow_the_settings(
    overrides: dict[str, object], host: str, expected: int, bare
) -> None:
    client = bare(**{"allowed_hosts": [], **overrides})
    response = await client.get("/health", headers={"Host": host})
    assert response.status_code == expected


async def test_the_address_a_request_arrived_at_is_a_known_host(bare) -> None:
    """A probe by the instance's own IP (a container health check) is answered; any other
    IP is not, and a name is never taken from where the request arrived."""
    client = bare(base_url="http://10.1.2.3:8000")  # the ASGI `server` is 10.1.2.3:8000
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/health", headers={"Host": "10.1.2.4:8000"})).status_code == 400
    named = bare(base_url="http://intranet.example:8000", allowed_hosts=[])
    assert (await named.get("/health")).status_code == 400


async def test_websocket_handshakes_with_unexpected_hosts_are_refused(settings: Settings) -> None:
    served = create_app(settings, migrate=False)
    async with serving(served) as host:
        address, port = host.rsplit(":", 1)

        async def handshake(host_header: str) -> bytes:
            reader, writer = await asyncio.open_connection(address, int(port))
            writer.write(
                b"GET /api/v1/ws HTTP/1.1\r\n"
                + f"Host: {host_header}\r\n".encode()
                + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), 10)
            writer.close()
            return answer

        refused = await handshake("evil.example")
        assert refused.startswith(b"HTTP/1.1 400"), refused
        assert b'{"detail":"Invalid Host header"}' in refused
        # The same handshake with a loopback Host is upgraded (then closed: no session).
        assert (await handshake(host)).startswith(b"HTTP/1.1 101")


@pytest.mark.parametrize(
    "path", ["/health", "/", "/docs", "/static/app.css", "/no-such-page", "/api/v1/auth/me"]
)
async def test_hsts_on_every_response_when_cookies_are_secure(
    path: str, client: httpx.AsyncClient
) -> None:
    response = await client.get(path)
    assert response.headers["strict-transport-security"] == HSTS


async def test_no_hsts_when_cookies_are_not_secure(bare) -> None:
    client = bare(cookie_secure=False)
    response = await client.get("/health")
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers


def _directives(csp: str) -> dict[str, str]:
    pairs = (part.strip().partition(" ") for part in csp.split(";"))
    return {name: value for name, _, value in pairs}


@pytest.mark.parametrize(
    ("overrides", "base_url", "connect"),
    [
        (
            {"public_url": "https://fx.example.com"},
            "https://fx.example.com",
            "wss://fx.example.com",
        ),
        (
            {"public_url": "http://fx.example.com:8080"},
            "https://testserver",
            "ws://fx.example.com:8080",
        ),
        ({}, "http://127.0.0.1:8000", "ws://127.0.0.1:8000 ws://localhost:8000"),
        ({}, "https://testserver", ""),
    ],
)
async def test_page_csp_names_only_fxdesks_own_sockets(
    overrides: dict[str, object], base_url: str, connect: str, bare
) -> None:
    client = bare(base_url=base_url, **overrides)
    response = await client.get("/")
    assert response.status_code == 200
    directives = _directives(response.headers["content-security-policy"])
    assert directives["connect-src"] == f"'self' {connect}".strip()
    assert "ws:" not in directives["connect-src"].split()  # never any host's socket
    for name, value in {
        "default-src": "'self'",
        "script-src": "'self'",
        "frame-ancestors": "'none'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
    }.items():
        assert directives[name] == value, name
