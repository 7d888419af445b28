"""Tasks and chat live: the main socket, the seed plain-text chat, NATS, persistence."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import nats
import pytest
from websockets.asyncio.client import connect

from fxdesk.app import create_app
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.users.models import Role, User
from fxdesk.users.schemas import username_key
from tests.factories import make_settings, purge_stream
from tests.live import next_event, serving, subscribe, token_for, ws_client


async def _user(app, name: str, role: Role = Role.user) -> User:
    async with app.state.database.session() as session:
        user = User(username=name, username_key=username_key(name), password_hash="x", role=role)
        session.add(user)
    return user


@pytest.fixture
async def live_settings(tmp_path: Path, db_url: str, nats_server: EmbeddedNats):
    await purge_stream(nats_server.url)
    return make_settings(tmp_path, db_url, nats_url=nats_server.url)


async def _text(ws, timeout: float = 10) -> str:
    return str(await asyncio.wait_for(ws.recv(), timeout))


async def test_task_created_reaches_socket_seed_chat_and_nats(live_settings) -> None:
    app = create_app(live_settings, migrate=False)
    nc = await nats.connect(live_settings.nats_url)
    on_nats: asyncio.Queue[dict] = asyncio.Queue()

    async def collect(msg) -> None:
        await on_nats.put(json.loads(msg.data))

    await nc.subscribe("tasks.updates", cb=collect)
    async with serving(app) as host:
        alice = await _user(app, "alice")
        token = await token_for(app, alice)
        cookie = {"Cookie": f"session_token={token}"}
        async with (
            ws_client(host, token) as main_ws,
            connect(f"ws://{host}/tasks/general_chat", additional_headers=cookie) as seed_ws,
        ):
            await subscribe(main_ws, ["tasks"], since=0)
            assert await _text(seed_ws) == "alice has joined the general chat!"
            async with httpx.AsyncClient(base_url=f"http://{host}", headers=cookie) as client:
                response = await client.post("/api/v1/tasks", json={"title": "Ship it"})
                assert response.status_code == 201
                finish = await client.post(f"/api/v1/tasks/{response.json()['id']}/finish")
                assert finish.status_code == 200
            created = await next_event(main_ws)
            assert created["event"] == "task_created"
            assert created["task"] == response.json()
            assert created["actor"] == {"id": alice.id, "username": "alice"}
            assert (await next_event(main_ws))["event"] == "task_finished"
            assert await _text(seed_ws) == 'alice created the task - "Ship it"!'
            assert await _text(seed_ws) == 'alice finished the task - "Ship it"!'
            from_nats = await asyncio.wait_for(on_nats.get(), 10)
            assert from_nats["event"] == "task_created" and from_nats["seq"] == created["seq"]
    await nc.close()


async def test_seed_general_chat_lines(live_settings) -> None:
    app = create_app(live_settings, migrate=False)
    async with serving(app) as host:
        alice, bob = await _user(app, "alice"), await _user(app, "bob")

        tokens = {user.id: await token_for(app, user) for user in (alice, bob)}

        def chat(user: User):
            headers = {"Cookie": f"session_token={tokens[user.id]}"}
            return connect(f"ws://{host}/tasks/general_chat", additional_headers=headers)

        async with chat(alice) as a:
            assert await _text(a) == "alice has joined the general chat!"
            async with chat(bob) as b:
                assert await _text(b) == "bob has joined the general chat!"
                assert await _text(a) == "bob has joined the general chat!"
                await b.send("hi, Alice")
                assert await _text(a) == "bob: hi, Alice"
                assert await _text(b) == "bob: hi, Alice"
                await b.send("x" * 2001)
                assert (await _text(b)).startswith("Error: ")
            assert await _text(a) == "bob has left the general chat!"


async def test_chat_crosses_sockets_and_survives_a_restart(live_settings) -> None:
    app = create_app(live_settings, migrate=False)
    async with serving(app) as host:
        alice, bob = await _user(app, "alice"), await _user(app, "bob")
        async with (
            ws_client(host, await token_for(app, alice)) as a,
            ws_client(host, await token_for(app, bob)) as b,
        ):
            await subscribe(a, ["chat"])
            await subscribe(b, ["chat"])
            await a.send(json.dumps({"op": "chat", "text": "Привет, Боб!"}))
            got = await next_event(b)
            assert got["event"] == "chat_message"
            assert got["text"] == "Привет, Боб!" and got["author"]["username"] == "alice"
            await a.send(json.dumps({"op": "chat", "text": "y" * 2001}))
            error = json.loads(await asyncio.wait_for(a.recv(), 10))
            while error.get("type") != "error":
                error = json.loads(await asyncio.wait_for(a.recv(), 10))
            assert "2000" in error["detail"]
        token = await token_for(app, bob)
    again = create_app(live_settings, migrate=False)  # a new process on the same database
    async with (
        serving(again) as host,
        httpx.AsyncClient(
            base_url=f"http://{host}", headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        history = (await client.get("/api/v1/chat/messages")).json()
    assert [m["text"] for m in history["items"]] == ["Привет, Боб!"]


async def test_chat_rate_limit_and_deletion_rights(live_settings) -> None:
    live_settings.chat_messages_per_window = 3
    app = create_app(live_settings, migrate=False)
    async with serving(app) as host:
        alice, bob = await _user(app, "alice"), await _user(app, "bob")
        mod = await _user(app, "mod", Role.moderator)

        tokens = {user.id: await token_for(app, user) for user in (alice, bob, mod)}

        def client(user: User) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {tokens[user.id]}"}
            return httpx.AsyncClient(base_url=f"http://{host}", headers=headers)

        async with client(alice) as a, client(bob) as b, client(mod) as m:
            ids = []
            for i in range(3):
                response = await a.post("/api/v1/chat/messages", json={"text": f"m{i}"})
                assert response.status_code == 201
                ids.append(response.json()["id"])
            limited = await a.post("/api/v1/chat/messages", json={"text": "too fast"})
            assert limited.status_code == 429 and "retry-after" in limited.headers
            assert (await b.delete(f"/api/v1/chat/messages/{ids[0]}")).status_code == 403
            assert (await a.delete(f"/api/v1/chat/messages/{ids[0]}")).status_code == 204
            assert (await m.delete(f"/api/v1/chat/messages/{ids[1]}")).status_code == 204
            assert (await m.delete(f"/api/v1/chat/messages/{ids[1]}")).status_code == 404
            history = (await b.get("/api/v1/chat/messages")).json()
            assert [msg["text"] for msg in history["items"]] == ["m2"]
            page = (await b.get("/api/v1/chat/messages", params={"limit": 1})).json()
            assert page["has_more"] is False


async def test_a_dead_socket_never_fails_a_rest_call(live_settings) -> None:
    live_settings.ws_queue_size = 8
    app = create_app(live_settings, migrate=False)
    async with serving(app) as host:
        alice = await _user(app, "alice")
        token = await token_for(app, alice)
        dead = await connect(
            f"ws://{host}/api/v1/ws", additional_headers={"Cookie": f"session_token={token}"}
        )
        await subscribe(dead, ["tasks", "chat"])
        dead.transport.abort()  # vanishes without a close frame
        async with ws_client(host, token) as alive:
            await subscribe(alive, ["tasks"])
            async with httpx.AsyncClient(
                base_url=f"http://{host}", headers={"Authorization": f"Bearer {token}"}
            ) as client:
                for i in range(30):
                    response = await client.post("/api/v1/tasks", json={"title": f"t{i}"})
                    assert response.status_code == 201
            titles = [(await next_event(alive))["task"]["title"] for _ in range(30)]
            assert titles == [f"t{i}" for i in range(30)]
