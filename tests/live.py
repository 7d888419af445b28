"""Helpers for live tests: real uvicorn servers on loopback, WebSocket clients, a probe route."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection, connect

from fxdesk.app import create_app
from fxdesk.auth.dependencies import CurrentUser
from fxdesk.config import Settings
from fxdesk.db import DbSession
from fxdesk.errors import Conflict
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import EventType
from fxdesk.serving import SERVER_OPTIONS
from fxdesk.users.models import User
from tests.factories import add_user, api_client, issue_token

probe = APIRouter(prefix="/api/v1/probe")


class ProbeIn(BaseModel):
    text: str = "hello"
    count: int = 1
    fail: bool = False
    pause: float = 0.0  # seconds to hold the transaction open after writing (a slow change)


@probe.post("/emit")
async def emit(body: ProbeIn, user: CurrentUser, session: DbSession) -> dict[str, Any]:
    """A stand-in for a domain change: writes chat_message events, optionally then fails."""
    event_ids = []
    for _ in range(body.count):
        row = await add_event(session, EventType.chat_message, {"text": body.text}, actor=user)
        event_ids.append(row.event_id)
    if body.pause:
        await asyncio.sleep(min(body.pause, 5.0))
    if body.fail:
        raise Conflict("probe failure after writing events")
    # An event's seq is given when it is published, after this commit: callers match event ids.
    return {"event_ids": event_ids}


def probe_app(settings: Settings) -> FastAPI:
    app = create_app(settings, migrate=False)
    app.include_router(probe)
    return app


class Served(NamedTuple):
    app: FastAPI
    host: str
    user: User
    token: str


@contextlib.asynccontextmanager
async def serving_probe(settings: Settings, username: str = "alice") -> AsyncIterator[Served]:
    """A `probe_app` on `settings` under uvicorn, a user `username` and a token of theirs."""
    app = probe_app(settings)
    async with serving(app) as host:
        user = await add_user(app, username)
        yield Served(app, host, user, await token_for(app, user))


async def post_probe(host: str, token: str, **body: object) -> httpx.Response:
    """POST `body` (see ProbeIn) to the probe route of a `probe_app` served at `host`."""
    async with api_client(host, token) as client:
        return await client.post("/api/v1/probe/emit", json=body)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` under a real uvicorn (lifespan included) on a free loopback port."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        **SERVER_OPTIONS,  # as `fxdesk serve` runs it
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
        raise RuntimeError("server exited during start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def token_for(app: FastAPI, user: Any) -> str:
    return await issue_token(app, user)


@contextlib.asynccontextmanager
async def ws_client(
    host: str,
    token: str | None,
    origin: str | None = None,
    receive_buffer: int | None = None,
    path: str = "/api/v1/ws",
    **kwargs: Any,
) -> AsyncIterator[ClientConnection]:
    """A WebSocket client; `receive_buffer` pins a small kernel buffer (a client that lags)."""
    headers = {"Cookie": f"session_token={token}"} if token else {}
    if receive_buffer is not None:
        address, port = host.rsplit(":", 1)
        sock = socket.socket()
        # Set before connect: loopback windows otherwise grow to tens of MB.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect((address, int(port)))
        sock.setblocking(False)
        kwargs["sock"] = sock
    # Unbounded by default: a test that stops reading mid-replay must still see the close frame
    # (a paused reader would wait out the 10 s close timeout).
    kwargs.setdefault("max_queue", None)
    async with connect(
        f"ws://{host}{path}",
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        open_timeout=10,
        **kwargs,
    ) as ws:
        yield ws


async def next_json(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def next_text(ws: ClientConnection, timeout: float = 10) -> str:
    """The next frame as it came (the seed sockets speak plain text)."""
    return str(await asyncio.wait_for(ws.recv(), timeout))


async def next_event(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    """The next event envelope, skipping protocol messages (hello, subscribed, pong)."""
    while True:
        message = await next_json(ws, timeout)
        if "event" in message:
            return message


async def subscribe(
    ws: ClientConnection, channels: list[str], since: int | None = None
) -> dict[str, Any]:
    hello = await next_json(ws)
    assert hello["type"] == "hello"
    await ws.send(json.dumps({"op": "subscribe", "channels": channels, "since": since}))
    while True:
        message = await next_json(ws)
        if message.get("type") in ("subscribed", "resync"):
            return message
