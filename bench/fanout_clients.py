"""The fan-out benchmark's WebSocket clients: opened many at a time, subscribed, closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from fanout_process import Server
from websockets.asyncio.client import ClientConnection, connect

CONNECT_CONCURRENCY = 64  # handshakes in flight at once: far below the server's accept backlog
OPEN_TIMEOUT = 30.0
CONNECT_ATTEMPTS = 3


async def open_client(server: Server, channel: str) -> ClientConnection:
    """Connect with the session cookie, read hello, subscribe and wait for `subscribed`."""
    ws = await connect(
        server.ws_url,
        additional_headers={"Cookie": f"session_token={server.token}"},
        open_timeout=OPEN_TIMEOUT,
        ping_interval=None,  # the server pings every 20 s; the library answers in the background
        close_timeout=2,
        compression=None,
    )
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            hello = json.loads(await ws.recv())
            if hello.get("type") != "hello":
                raise RuntimeError(f"expected hello, got {hello}")
            await ws.send(json.dumps({"op": "subscribe", "channels": [channel], "since": None}))
            reply = json.loads(await ws.recv())
            if reply.get("type") != "subscribed":
                raise RuntimeError(f"expected subscribed, got {reply}")
    except BaseException:
        ws.transport.abort()
        raise
    return ws


@dataclass
class ConnectResult:
    clients: list[ClientConnection]
    failures: int
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.clients) / self.seconds if self.seconds else 0.0


async def open_many(server: Server, count: int, channel: str) -> ConnectResult:
    """Open `count` subscribed clients, at most CONNECT_CONCURRENCY handshakes at a time."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: dict[str, int] = {}

    async def one() -> ClientConnection | None:
        async with gate:
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    return await open_client(server, channel)
                except Exception as exc:
                    name = type(exc).__name__
                    errors[name] = errors.get(name, 0) + 1
                    await asyncio.sleep(0.2 * (attempt + 1))
            return None

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)))
    seconds = time.perf_counter() - started
    clients = [ws for ws in results if ws is not None]
    return ConnectResult(clients, count - len(clients), seconds, errors)


async def close_many(clients: list[ClientConnection], limit_seconds: float = 60.0) -> None:
    """Close cleanly (bounded in time), then abort whatever has not finished closing."""
    gate = asyncio.Semaphore(256)

    async def one(ws: ClientConnection) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await ws.close()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(one(ws) for ws in clients)), limit_seconds)
    for ws in clients:
        with contextlib.suppress(Exception):
            ws.transport.abort()
