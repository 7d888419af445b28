"""CSRF and origins: an Origin is compared whole (scheme, host, port) with the origins fxdesk
serves, never with the request's Host header; login, logout and register are checked too."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from fxdesk.app import create_app
from fxdesk.auth.origins import normalize_origin
from fxdesk.config import Settings
from fxdesk.users.models import User
from tests.conftest import UserFactory
from tests.factories import ALLOWED_ORIGIN, PASSWORD, asgi_client, sign_in
from tests.live import next_json, serving, token_for, ws_client


def local_client(app: FastAPI) -> httpx.AsyncClient:
    """A client whose requests arrive (ASGI `server`) at 127.0.0.1:8000, like `make run`'s."""
    return asgi_client(app, base_url="http://127.0.0.1:8000")


CROSS_SITE = {"detail": "Cross-site request refused"}
FOREIGN = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": ""},
    {"Origin": "https://testserver"},  # equals the Host header: still not an origin fxdesk serves
    {"Origin": "http://allowed.example"},  # an allowed host under another scheme
    {"Origin": "https://allowed.example:8443"},  # ... or another port
    {"Origin": "https://allowed.example.evil.example"},
    {"Origin": "https://allowed.example/path"},
    {"Sec-Fetch-Site": "cross-site"},
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://fx.example.com", "https://fx.example.com"),
        ("HTTPS://FX.Example.COM/", "https://fx.example.com"),
        ("https://fx.example.com:443", "https://fx.example.com"),
        ("http://fx.example.com:80", "http://fx.example.com"),
        ("http://fx.example.com:443", "http://fx.example.com:443"),
        ("https://fx.example.com:80", "https://fx.example.com:80"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("null", None),
        ("", None),
        ("fx.example.com", None),
        ("ftp://fx.example.com", None),
        ("https://user@fx.example.com", None),
        ("https://fx.example.com/app", None),
        ("https://fx.example.com?x", None),
        ("https://fx.example.com:99999", None),
        ("https://fx.example.com:0", None),
        ("https://", None),
    ],
)
def test_origins_are_normalised_whole(value: str, expected: str | None) -> None:
    assert normalize_origin(value) == expected


@pytest.mark.parametrize("headers", FOREIGN)
async def test_cookie_writes_from_foreign_origins_are_refused(
    headers: dict[str, str], client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    await sign_in(app, client, await make_user())
    response = await client.post("/api/v1/auth/logout-all", headers=headers)
    assert (response.status_code, response.json()) == (403, CROSS_SITE)
    assert (await client.get("/api/v1/auth/me")).status_code == 200  # nothing changed


@pytest.mark.parametrize(
    "origin", [ALLOWED_ORIGIN, "HTTPS://Allowed.Example", "https://allowed.example:443"]
)
async def test_allowed_origins_match_in_any_spelling(
    origin: str, client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    await sign_in(app, client, await make_user())
    response = await client.post("/api/v1/auth/logout-all", headers={"Origin": origin})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://fx.example.com", 200),
        ("https://FX.example.com:443", 200),
        ("http://fx.example.com", 403),
        ("https://fx.example.com:8443", 403),
        ("https://testserver", 403),
        (ALLOWED_ORIGIN, 200),
    ],
)
async def test_public_url_is_the_served_origin(
    origin: str,
    expected: int,
    settings: Settings,
    client: httpx.AsyncClient,
    make_user: UserFactory,
    app,
) -> None:
    settings.public_url = "https://fx.example.com/"
    await sign_in(app, client, await make_user())
    response = await client.post("/api/v1/auth/logout-all", headers={"Origin": origin})
    assert response.status_code == expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://127.0.0.1:8000", 200),
        ("http://localhost:8000", 200),
        ("http://[::1]:8000", 200),
        ("http://127.0.0.1:8001", 403),  # another local service
        ("http://localhost:3000", 403),
        ("https://127.0.0.1:8000", 403),
        ("http://127.0.0.2:8000", 403),
    ],
)
async def test_without_public_url_the_listening_address_is_served(
    origin: str, expected: int, make_user: UserFactory, app
) -> None:
    """No public URL (development): the origin of the socket the request arrived at counts."""
    async with local_client(app) as client:
        await sign_in(app, client, await make_user())
        response = await client.post("/api/v1/auth/logout-all", headers={"Origin": origin})
    assert response.status_code == expected


async def test_a_public_url_replaces_the_listening_address(
    settings: Settings, make_user: UserFactory, app
) -> None:
    settings.public_url = "https://fx.example.com"
    async with local_client(app) as client:
        await sign_in(app, client, await make_user())
        response = await client.post(
            "/api/v1/auth/logout-all", headers={"Origin": "http://127.0.0.1:8000"}
        )
    assert response.status_code == 403


SESSION_ROUTES = [
    ("/api/v1/auth/login", {"json": {"username": "alice", "password": PASSWORD}}),
    ("/api/v1/auth/register", {"json": {"username": "mallory", "password": PASSWORD}}),
    ("/api/v1/auth/logout", {}),
    ("/auth/login", {"data": {"username": "alice", "password": PASSWORD}}),
    ("/auth/register", {"json": {"username": "mallory", "password": PASSWORD}}),
]


@pytest.mark.parametrize(("path", "body"), SESSION_ROUTES)
@pytest.mark.parametrize("headers", FOREIGN)
async def test_login_logout_and_register_refuse_cross_site_requests(
    path: str,
    body: dict[str, object],
    headers: dict[str, str],
    client: httpx.AsyncClient,
    make_user: UserFactory,
    app,
) -> None:
    """Login CSRF (signing the victim in as the attacker) and logout CSRF are refused."""
    alice = await make_user("alice")
    await sign_in(app, client, alice)
    response = await client.post(path, headers=headers, **body)  # type: ignore[arg-type]
    assert (response.status_code, response.json()) == (403, CROSS_SITE)
    assert "set-cookie" not in response.headers  # no session started, none ended
    assert (await client.get("/api/v1/auth/me")).json()["username"] == "alice"
    async with app.state.database.session() as session:
        names = (await session.scalars(select(User.username))).all()
    assert "mallory" not in names


@pytest.mark.parametrize(("path", "body"), SESSION_ROUTES)
@pytest.mark.parametrize(
    "headers", [{}, {"Origin": ALLOWED_ORIGIN}, {"Sec-Fetch-Site": "same-origin"}]
)
async def test_session_routes_still_serve_api_clients_and_allowed_pages(
    path: str,
    body: dict[str, object],
    headers: dict[str, str],
    client: httpx.AsyncClient,
    make_user: UserFactory,
) -> None:
    await make_user("alice")
    response = await client.post(path, headers=headers, **body)  # type: ignore[arg-type]
    assert response.status_code in (200, 201), response.text


async def test_websocket_handshakes_compare_origins_whole(
    settings: Settings, make_user: UserFactory, app
) -> None:
    """A real server: the page's own origin (its listening address) opens the live socket; the
    same host on another port or scheme, or the Host header's name, does not."""
    served = create_app(settings, migrate=False)
    user = await make_user()
    async with serving(served) as host:
        token = await token_for(served, user)
        async with ws_client(host, token, origin=f"http://{host}") as ws:
            assert (await next_json(ws))["type"] == "hello"
        port = int(host.rsplit(":", 1)[1])
        for origin in (
            f"http://127.0.0.1:{port + 1}",
            f"https://{host}",
            "https://testserver",
            "null",
        ):
            async with ws_client(host, token, origin=origin) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await next_json(ws)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, origin
