"""Chat live: across the main sockets and a restart, the seed plain-text general chat, the
chat's rate limit and who may delete what."""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect

from fxdesk.app import create_app
from fxdesk.users.models import Role, User
from tests.factories import add_user, api_client
from tests.live import next_event, next_text, serving, subscribe, token_for, ws_client


async def test_seed_general_chat_lines(live_settings) -> None:
    app = create_app(live_settings, migrate=False)
    async with serving(app) as host:
        alice, bob = await add_user(app, "alice"), await add_user(app, "bob")

        tokens = {user.id: await token_for(app, user) for user in (alice, bob)}

        def chat(user: User):
            headers = {"Cookie": f"session_token={tokens[user.id]}"}
            return connect(f"ws://{host}/tasks/general_chat", additional_headers=headers)

        async with chat(alice) as a:
            assert await next_text(a) == "alice has joined the general chat!"
            async with chat(bob) as b:
                assert await next_text(b) == "bob has joined the general chat!"
                assert await next_text(a) == "bob has joined the general chat!"
                await b.send("hi, Alice")
                assert await next_text(a) == "bob: hi, Alice"
                assert await next_text(b) == "bob: hi, Alice"
                await b.send("x" * 2001)
                assert (await next_text(b)).startswith("Error: ")
            assert await next_text(a) == "bob has left the general chat!"


async def test_chat_crosses_sockets_and_survives_a_restart(live_settings) -> None:
    app = create_app(live_settings, migrate=False)
    async with serving(app) as host:
        alice, bob = await add_user(app, "alice"), await add_user(app, "bob")
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
        api_client(host, token) as client,
    ):
        history = (await client.get("/api/v1/chat/messages")).json()
    assert [m["text"] for m in history["items"]] == ["Привет, Боб!"]


async def test_chat_rate_limit_and_deletion_rights(live_settings) -> None:
    live_settings.chat_messages_per_window = 3
    app = create_app(live_settings, migrate=False)
    async with serving(app) as host:
        alice, bob = await add_user(app, "alice"), await add_user(app, "bob")
        mod = await add_user(app, "mod", Role.moderator)

        tokens = {user.id: await token_for(app, user) for user in (alice, bob, mod)}

        def client(user: User) -> httpx.AsyncClient:
            return api_client(host, tokens[user.id])

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
