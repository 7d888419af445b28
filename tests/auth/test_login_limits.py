"""Login limits that stop guessing without letting a stranger lock the owner out.

Strict per (account, client address), ceilings per account and per address; the address is
the socket peer unless that is a trusted proxy (FXDESK_TRUSTED_PROXIES).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from fxdesk.auth.cookies import resolve_client_address
from fxdesk.auth.ratelimit import LoginLimiter
from fxdesk.config import Settings
from fxdesk.users.models import User
from tests.conftest import UserFactory
from tests.factories import PASSWORD, add_user, asgi_client

OWNER_ADDRESS = "198.51.100.7"
ATTACKER_ADDRESS = "203.0.113.5"
PROXY_ADDRESS = "10.0.0.2"

From = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def from_address(app: FastAPI) -> AsyncIterator[From]:
    """Clients whose requests come from a given socket peer address."""
    clients: list[httpx.AsyncClient] = []

    def factory(address: str) -> httpx.AsyncClient:
        client = asgi_client(app, address=(address, 40_000))
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


async def _login(
    client: httpx.AsyncClient, user: User | str, password: str, **headers: str
) -> httpx.Response:
    username = user if isinstance(user, str) else user.username
    return await client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={name.replace("_", "-"): value for name, value in headers.items()},
    )


def _limiter(app: FastAPI) -> LoginLimiter:
    limiter: LoginLimiter = app.state.accounts.limiter
    return limiter


async def test_an_attacker_elsewhere_cannot_lock_the_owner_out(
    app: FastAPI, make_user: UserFactory, from_address: From
) -> None:
    owner = await make_user()
    attacker, owner_client = from_address(ATTACKER_ADDRESS), from_address(OWNER_ADDRESS)
    limit = app.state.settings.login_max_failures_per_account
    for _ in range(limit):
        assert (await _login(attacker, owner, "wrong-guess")).status_code == 401
    stopped = await _login(attacker, owner, "wrong-guess")
    assert stopped.status_code == 429
    assert 0 < int(stopped.headers["retry-after"]) <= 900
    assert stopped.json() == {"detail": "Too many failed logins; try again later"}
    # Even the right password is refused from the attacker's address: guessing stays stopped.
    assert (await _login(attacker, owner, PASSWORD)).status_code == 429

    # The owner, from the usual address, is not locked out.
    assert (await _login(owner_client, owner, PASSWORD)).status_code == 200
    # And failing there counts afresh: the attacker's failures are not the owner's.
    assert (await _login(owner_client, owner, "typo")).status_code == 401


async def test_the_attacker_may_still_try_other_accounts_until_the_address_ceiling(
    app: FastAPI, make_user: UserFactory, from_address: From
) -> None:
    limiter = _limiter(app)
    limiter.pairs.limit = 2
    limiter.addresses.limit = 5
    users = [await make_user() for _ in range(3)]
    attacker, other = from_address(ATTACKER_ADDRESS), from_address(OWNER_ADDRESS)
    for user in users[:2]:
        for _ in range(2):
            assert (await _login(attacker, user, "wrong-guess")).status_code == 401
        assert (await _login(attacker, user, "wrong-guess")).status_code == 429
    assert (await _login(attacker, users[2], "wrong-guess")).status_code == 401  # 5th failure
    # Over the per-address ceiling: every account is refused from there, even a good password.
    refused = await _login(attacker, users[2], PASSWORD)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert (await _login(attacker, "nobody-at-all", "x")).status_code == 429
    # Another address is not affected by that ceiling.
    assert (await _login(other, users[2], PASSWORD)).status_code == 200


async def test_the_per_account_ceiling_holds_across_addresses(
    app: FastAPI, make_user: UserFactory, from_address: From
) -> None:
    limiter = _limiter(app)
    limiter.pairs.limit = 2
    limiter.accounts.limit = 4
    owner = await make_user()
    for n in range(2):
        bot = from_address(f"203.0.113.{10 + n}")
        for _ in range(2):
            assert (await _login(bot, owner, "wrong-guess")).status_code == 401
    # Four failures from two addresses: the account is refused everywhere for the window.
    assert (await _login(from_address(OWNER_ADDRESS), owner, PASSWORD)).status_code == 429
    assert (await _login(from_address("203.0.113.99"), owner, "guess")).status_code == 429


async def test_a_good_login_clears_only_its_own_address_count(
    app: FastAPI, make_user: UserFactory, from_address: From
) -> None:
    _limiter(app).pairs.limit = 3
    owner = await make_user()
    attacker, owner_client = from_address(ATTACKER_ADDRESS), from_address(OWNER_ADDRESS)
    for _ in range(2):
        assert (await _login(attacker, owner, "wrong-guess")).status_code == 401
        assert (await _login(owner_client, owner, "typo")).status_code == 401
    assert (await _login(owner_client, owner, PASSWORD)).status_code == 200
    # The owner's count starts again ...
    for _ in range(3):
        assert (await _login(owner_client, owner, "typo")).status_code == 401
    # ... the attacker's does not: one more failure reaches the limit.
    assert (await _login(attacker, owner, "wrong-guess")).status_code == 401
    assert (await _login(attacker, owner, "wrong-guess")).status_code == 429


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    app: FastAPI, make_user: UserFactory, from_address: From
) -> None:
    owner = await make_user()
    attacker = from_address(ATTACKER_ADDRESS)
    limit = app.state.settings.login_max_failures_per_account
    assert app.state.settings.trusted_proxies == []
    for n in range(limit):
        # A made-up X-Forwarded-For per attempt would be a fresh address each time if believed.
        response = await _login(attacker, owner, "wrong-guess", x_forwarded_for=f"192.0.2.{n}")
        assert response.status_code == 401
    refused = await _login(attacker, owner, PASSWORD, x_forwarded_for=OWNER_ADDRESS)
    assert refused.status_code == 429
    # Nor may a client that is no proxy speak for the owner's address.
    assert (await _login(from_address(OWNER_ADDRESS), owner, PASSWORD)).status_code == 200


async def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(
    app: FastAPI, make_user: UserFactory, from_address: From
) -> None:
    app.state.settings.trusted_proxies = [ipaddress.ip_network("10.0.0.0/8")]
    owner = await make_user()
    proxy = from_address(PROXY_ADDRESS)  # everybody arrives through it
    limit = app.state.settings.login_max_failures_per_account
    for n in range(limit):
        # What the attacker writes is left of what the proxy appends: it is never believed.
        forwarded = f"192.0.2.{n}, {ATTACKER_ADDRESS}"
        response = await _login(proxy, owner, "wrong-guess", x_forwarded_for=forwarded)
        assert response.status_code == 401
    refused = await _login(proxy, owner, "wrong", x_forwarded_for=f"192.0.2.77, {ATTACKER_ADDRESS}")
    assert refused.status_code == 429
    # The proxy itself is not the client: the owner behind it still gets in.
    assert (await _login(proxy, owner, PASSWORD, x_forwarded_for=OWNER_ADDRESS)).status_code == 200


async def test_a_username_that_grows_under_nfkc_is_counted_not_a_500(
    app: FastAPI, from_address: From
) -> None:
    # U+FDFA becomes 18 characters under NFKC: 64 of them exceed the key column as such.
    client = from_address(ATTACKER_ADDRESS)
    for _ in range(2):
        response = await _login(client, "\ufdfa" * 64, "wrong-guess")
        assert response.status_code == 401, response.text
        assert response.json() == {"detail": "Invalid username or password"}


TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Not a proxy: the header is whatever the client says, ignored.
        ("203.0.113.5", ["198.51.100.7"], "203.0.113.5"),
        (None, ["198.51.100.7"], "unknown"),
        # A proxy: the right-most hop that is not one of ours.
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        ("10.0.0.2", ["1.1.1.1, 198.51.100.7, 10.9.9.9"], "198.51.100.7"),
        ("10.0.0.2", ["1.1.1.1", "198.51.100.7, 10.9.9.9"], "198.51.100.7"),  # two headers
        ("10.0.0.2", ["[2001:db8::5]:443, 198.51.100.7:5555"], "198.51.100.7"),
        ("2001:db8::1", ["2001:db9::7, 2001:db8:0:0::9"], "2001:db9::7"),
        ("::ffff:10.0.0.2", ["::ffff:198.51.100.7"], "198.51.100.7"),
        # Only proxies (or no header): the nearest client we know is the farthest proxy.
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["10.1.1.1"], "10.1.1.1"),
        # A malformed hop is never taken for an address; the walk stops at the proxy before it.
        ("10.0.0.2", ["198.51.100.7, not-an-ip"], "10.0.0.2"),
        ("10.0.0.2", ["evil, 10.3.3.3"], "10.3.3.3"),
        ("10.0.0.2", [""], "10.0.0.2"),
    ],
)
def test_client_address_resolution(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert resolve_client_address(peer, forwarded, TRUSTED) == expected


def test_trusted_proxies_setting_parses_lists_and_refuses_garbage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FXDESK_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16")
    assert [str(n) for n in Settings().trusted_proxies] == ["10.0.0.1/32", "192.168.0.0/16"]
    monkeypatch.setenv("FXDESK_TRUSTED_PROXIES", '["2001:db8::/32"]')
    assert [str(n) for n in Settings().trusted_proxies] == ["2001:db8::/32"]
    monkeypatch.delenv("FXDESK_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("FXDESK_TRUSTED_PROXIES", "10.0.0.1, proxy.example")
    with pytest.raises(ValidationError, match="FXDESK_TRUSTED_PROXIES"):
        Settings()


async def test_the_served_app_does_not_believe_forwarded_for_from_a_loopback_peer(
    settings: Settings, password_hash: str
) -> None:
    """Under uvicorn as `fxdesk serve` runs it, a local client's made-up X-Forwarded-For is not
    its address (uvicorn's own proxy-header rewrite trusts any loopback peer)."""
    from fxdesk.app import create_app
    from tests.live import serving

    served = create_app(settings, migrate=False)
    limit = settings.login_max_failures_per_account
    async with serving(served) as host:
        await add_user(served, "owner", password_hash=password_hash)
        async with httpx.AsyncClient(base_url=f"http://{host}") as client:
            for n in range(limit):
                response = await _login(client, "owner", "wrong", x_forwarded_for=f"192.0.2.{n}")
                assert response.status_code == 401
            blocked = await _login(client, "owner", PASSWORD, x_forwarded_for="192.0.2.200")
            assert blocked.status_code == 429
