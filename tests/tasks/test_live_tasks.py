"""Tasks live: a change reaches the main socket, the seed plain-text chat and NATS, and a dead
socket never fails a REST call."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import nats
from websockets.asyncio.client import connect

from fxdesk.app import create_app
from tests.factories import add_user, api_client
from tests.live import next_event, next_text, serving, subscribe, token_for, ws_client


async def test_task_created_reaches_socket_seed_chat_and_nats(live_settings) -> None:
    app = create_app(live_settings, migrate=False)
    nc = await nats.connect(live_settings.nats_url)
    on_nats: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def collect(msg) -> None:
        await on_nats.put(json.loads(msg.data))

    await nc.subscribe("tasks.updates", cb=collect)
    async with serving(app) as host:
        alice = await add_user(app, "alice")
        token = await token_for(app, alice)
        cookie = {"Cookie": f"session_token={token}"}
        async with (
            ws_client(host, token) as main_ws,
            connect(f"ws://{host}/tasks/general_chat", additional_headers=cookie) as seed_ws,
        ):
            await subscribe(main_ws, ["tasks"], since=0)
            assert await next_text(seed_ws) == "alice has joined the general chat!"
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
            assert await next_text(seed_ws) == 'alice created the task - "Ship it"!'
            assert await next_text(seed_ws) == 'alice finished the task - "Ship it"!'
            from_nats = await asyncio.wait_for(on_nats.get(), 10)
            assert from_nats["event"] == "task_created" and from_nats["seq"] == created["seq"]
    await nc.close()


async def test_a_dead_socket_never_fails_a_rest_call(live_settings) -> None:
    live_settings.ws_queue_size = 8
    app = create_app(live_settings, migrate=False)
    async with serving(app) as host:
        alice = await add_user(app, "alice")
        token = await token_for(app, alice)
        dead = await connect(
            f"ws://{host}/api/v1/ws", additional_headers={"Cookie": f"session_token={token}"}
        )
        await subscribe(dead, ["tasks", "chat"])
        dead.transport.abort()  # vanishes without a close frame
        async with ws_client(host, token) as alive:
            await subscribe(alive, ["tasks"])
            async with api_client(host, token) as client:
                for i in range(30):
                    response = await client.post("/api/v1/tasks", json={"title": f"t{i}"})
                    assert response.status_code == 201
            titles = [(await next_event(alive))["task"]["title"] for _ in range(30)]
            assert titles == [f"t{i}" for i in range(30)]
