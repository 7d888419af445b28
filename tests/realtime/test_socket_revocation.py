"""Sockets obey their session: when it ends (logout, logout-all, a password change, deactivation,
ending it from the sessions list, expiry) or its access changes (a role), every socket it holds
on every instance closes within a second with 4401 or 4403."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from fxdesk.auth.models import UserSession
from fxdesk.chat.models import ChatMessage
from fxdesk.users.lookup import MAX_AGE_SECONDS
from fxdesk.users.models import Role, User
from tests.factories import PASSWORD, add_user, api_client, make_settings, seconds_until
from tests.live import next_json, next_text, probe_app, serving, subscribe, token_for, ws_client

CLOSE_WITHIN = 1.0


async def _user(app: Any, name: str, role: Role = Role.user) -> User:
    """A user who can log in with PASSWORD (`two` keeps its hash on each app)."""
    return await add_user(app, name, role, password_hash=app.state.password_hash)


@pytest.fixture
async def two(tmp_path: Path, db_url: str, nats_url: str, password_hash: str) -> Any:
    """Two instances of one deployment (same database, same NATS), both serving."""
    app_a = probe_app(make_settings(tmp_path / "a", db_url, nats_url=nats_url))
    app_b = probe_app(make_settings(tmp_path / "b", db_url, nats_url=nats_url))
    app_a.state.password_hash = app_b.state.password_hash = password_hash
    async with serving(app_a) as host_a, serving(app_b) as host_b:
        yield app_a, host_a, app_b, host_b


async def _closed(ws: ClientConnection, limit: float = 5.0) -> tuple[int | None, float]:
    """Read until the socket closes; its close code and when (monotonic) it closed."""
    try:
        async with asyncio.timeout(limit):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd else None), time.monotonic()
    except TimeoutError:
        return None, time.monotonic()


async def _still_open(ws: ClientConnection) -> bool:
    await ws.send(json.dumps({"op": "ping"}))
    while True:
        message = await next_json(ws, timeout=5)
        if message.get("type") == "pong":
            return True


Action = Callable[[str, str, str], Awaitable[httpx.Response]]


async def _logout(host: str, token: str, _admin: str) -> httpx.Response:
    async with api_client(host, token) as api:
        return await api.post("/api/v1/auth/logout")


async def _logout_all(host: str, token: str, _admin: str) -> httpx.Response:
    async with api_client(host, token) as api:
        return await api.post("/api/v1/auth/logout-all")


async def _deactivate(host: str, token: str, admin: str) -> httpx.Response:
    async with api_client(host, token) as api:
        me = (await api.get("/api/v1/auth/me")).json()
    async with api_client(host, admin) as api:
        return await api.patch(f"/api/v1/users/{me['id']}", json={"is_active": False})


async def _end_from_list(host: str, token: str, _admin: str) -> httpx.Response:
    async with api_client(host, token) as api:
        mine = (await api.get("/api/v1/auth/sessions")).json()["items"]
        current = next(item["id"] for item in mine if item["current"])
        return await api.delete(f"/api/v1/auth/sessions/{current}")


@pytest.mark.parametrize(
    "action", [_logout, _logout_all, _deactivate, _end_from_list], ids=lambda f: f.__name__
)
async def test_an_ended_session_closes_its_sockets_on_every_instance(
    two: Any, action: Action
) -> None:
    app_a, host_a, _app_b, host_b = two
    alice = await _user(app_a, "alice")
    admin = await _user(app_a, "root", Role.admin)
    token = await token_for(app_a, alice)
    other_session = await token_for(app_a, alice)
    async with (
        ws_client(host_b, token) as live_b,
        ws_client(host_a, token) as live_a,
        ws_client(host_b, token, path="/tasks/general_chat") as seed_b,
        ws_client(host_b, other_session) as untouched,
    ):
        await subscribe(live_b, ["chat", "tasks"])
        await subscribe(live_a, ["chat"])
        await subscribe(untouched, ["chat"])
        response = await action(host_a, token, await token_for(app_a, admin))
        assert response.status_code == 200, response.text
        done = time.monotonic()
        for ws in (live_b, live_a, seed_b):
            code, at = await _closed(ws)
            assert code == 4401
            assert at - done < CLOSE_WITHIN, f"closed after {at - done:.2f} s"
        if action in (_logout, _end_from_list):
            assert await _still_open(untouched)  # another session of the same user goes on
        else:
            code, _at = await _closed(untouched)
            assert code == 4401


async def test_a_password_change_closes_the_other_sessions_sockets_only(two: Any) -> None:
    app_a, host_a, _app_b, host_b = two
    alice = await _user(app_a, "alice")
    here, elsewhere = await token_for(app_a, alice), await token_for(app_a, alice)
    async with ws_client(host_b, here) as mine, ws_client(host_b, elsewhere) as theirs:
        await subscribe(mine, ["chat"])
        await subscribe(theirs, ["chat"])
        async with api_client(host_a, here) as api:
            response = await api.post(
                "/api/v1/auth/password",
                json={"current_password": PASSWORD, "new_password": "another-password-2"},
            )
        assert response.status_code == 200, response.text
        code, _at = await _closed(theirs)
        assert code == 4401
        assert await _still_open(mine)


async def test_a_role_change_closes_the_users_sockets_with_4403(two: Any) -> None:
    app_a, host_a, _app_b, host_b = two
    alice = await _user(app_a, "alice")
    admin = await _user(app_a, "root", Role.admin)
    async with ws_client(host_b, await token_for(app_a, alice)) as live:
        await subscribe(live, ["tasks"])
        async with api_client(host_a, await token_for(app_a, admin)) as api:
            response = await api.patch(f"/api/v1/users/{alice.id}", json={"role": "moderator"})
        assert response.status_code == 200
        done = time.monotonic()
        code, at = await _closed(live)
        assert code == 4403 and at - done < CLOSE_WITHIN
    # the session itself lives on: it reconnects and now acts as a moderator
    async with ws_client(host_b, await token_for(app_a, alice)) as again:
        await subscribe(again, ["tasks"])
        assert await _still_open(again)


async def test_a_socket_closes_when_its_session_expires(two: Any) -> None:
    app_a, _host_a, _app_b, host_b = two
    alice = await _user(app_a, "alice")
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    async with app_a.state.database.session() as session:
        session.add(
            UserSession(id="s" * 32, user_id=alice.id, expires_at=expires_at, user_agent="t")
        )
    token = app_a.state.tokens.issue(alice, "s" * 32, expires_at)
    async with ws_client(host_b, token) as live:
        await subscribe(live, ["chat"])
        code, _at = await _closed(live, limit=10)
        assert code == 4401
        assert abs(time.time() - expires_at.timestamp()) < 1.5


async def test_a_socket_cannot_chat_once_its_session_has_ended(two: Any) -> None:
    """Even before the session's event has closed it (the stream may lag), a socket acts for
    its user only while the session lives."""
    app_a, _host_a, _app_b, host_b = two
    alice = await _user(app_a, "alice")
    token = await token_for(app_a, alice)
    async with (
        ws_client(host_b, token) as live,
        ws_client(host_b, token, path="/tasks/general_chat") as seed,
    ):
        await subscribe(live, ["chat"])
        # ended behind the hub's back: no event is published for this change
        async with app_a.state.database.session() as session:
            await session.execute(
                update(UserSession)
                .where(UserSession.user_id == alice.id)
                .values(ended_at=datetime.now(UTC))
            )
        await live.send(json.dumps({"op": "chat", "text": "still me?"}))
        while (message := await next_json(live))["type"] != "error":
            pass
        assert message["detail"] == "Session ended"
        await seed.send("still me, seed?")
        while not (line := await next_text(seed, 5)).startswith("Error"):
            pass
        assert line == "Error: Session ended"
    async with app_a.state.database.session() as session:
        stored = await session.scalar(select(func.count()).select_from(ChatMessage))
    assert stored == 0


# --- REST across instances: a write checks the database, a read trusts a view at most 1 s old


async def _status(client: httpx.AsyncClient, method: str = "GET") -> int:
    if method == "GET":
        return (await client.get("/api/v1/auth/me")).status_code
    return (await client.post("/api/v1/chat/messages", json={"text": "still me?"})).status_code


async def _refused_within(client: httpx.AsyncClient, limit: float) -> float:
    """Seconds until a GET with `client`'s token gets 401 (fails after `limit`)."""

    async def refused() -> bool:
        return await _status(client) == 401

    return await seconds_until(refused, limit, "the ended session was refused")


async def test_logout_is_refused_at_once_here_and_within_the_events_elsewhere(two: Any) -> None:
    app_a, host_a, _app_b, host_b = two
    alice = await _user(app_a, "alice")
    token = await token_for(app_a, alice)
    async with api_client(host_a, token) as on_a, api_client(host_b, token) as on_b:
        assert await _status(on_a) == 200
        assert await _status(on_b) == 200  # instance b now knows the session
        assert (await on_a.post("/api/v1/auth/logout")).status_code == 200
        assert await _status(on_a) == 401  # the instance that ended it: the very next request
        assert await _status(on_b, "POST") == 401  # a write anywhere reads the database
        # a read on b: as soon as the session_ended event arrives, well before the view's
        # age bound would have made it read again
        assert await _refused_within(on_b, limit=MAX_AGE_SECONDS / 2) < MAX_AGE_SECONDS / 2
    async with app_a.state.database.session() as session:
        stored = await session.scalar(select(func.count()).select_from(ChatMessage))
    assert stored == 0


async def test_a_session_ended_without_an_event_is_refused_within_the_bound(two: Any) -> None:
    """Even if no event ever told an instance, it reads the session again after at most
    MAX_AGE_SECONDS; a write is refused at once."""
    app_a, _host_a, _app_b, host_b = two
    alice = await _user(app_a, "alice")
    token = await token_for(app_a, alice)
    async with api_client(host_b, token) as on_b:
        assert await _status(on_b) == 200
        async with app_a.state.database.session() as session:
            await session.execute(
                update(UserSession)
                .where(UserSession.user_id == alice.id)
                .values(ended_at=datetime.now(UTC))
            )
        assert await _status(on_b, "POST") == 401
        waited = await _refused_within(on_b, limit=MAX_AGE_SECONDS + 0.5)
        assert waited <= MAX_AGE_SECONDS + 0.5


async def test_while_the_event_path_is_down_every_read_checks_the_database(two: Any) -> None:
    app_a, _host_a, app_b, host_b = two
    alice = await _user(app_a, "alice")
    token = await token_for(app_a, alice)
    async with api_client(host_b, token) as on_b:
        assert await _status(on_b) == 200
        app_b.state.events.problem = "the stream consumer delivered nothing for 9 s"
        try:
            async with app_a.state.database.session() as session:
                await session.execute(
                    update(UserSession)
                    .where(UserSession.user_id == alice.id)
                    .values(ended_at=datetime.now(UTC))
                )
            assert await _status(on_b) == 401
        finally:
            app_b.state.events.problem = None


async def test_a_role_change_reaches_reads_on_another_instance(two: Any) -> None:
    app_a, host_a, _app_b, host_b = two
    admin = await _user(app_a, "root", Role.admin)
    bob = await _user(app_a, "bob")
    admin_token, bob_token = await token_for(app_a, admin), await token_for(app_a, bob)
    async with api_client(host_a, admin_token) as as_admin, api_client(host_b, bob_token) as as_bob:
        assert (await as_bob.get("/api/v1/auth/me")).json()["role"] == "user"
        changed = await as_admin.patch(f"/api/v1/users/{bob.id}", json={"role": "moderator"})
        assert changed.status_code == 200, changed.text
        started = time.monotonic()
        while (await as_bob.get("/api/v1/auth/me")).json().get("role") != "moderator":
            assert time.monotonic() - started < CLOSE_WITHIN
            await asyncio.sleep(0.01)
