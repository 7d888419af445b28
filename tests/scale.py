"""Several real `fxdesk serve` processes on one PostgreSQL and a NATS cluster, with writers and
socket clients over the real wire: shared by the scale test and bench/scale_bench.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.factories import free_port

PASSWORD = "scale-test-password-1"


class FxdeskProcess:
    """One `fxdesk serve` in a process of its own: its logs go to a file in its data dir."""

    def __init__(self, index: int, data_dir: Path, env: dict[str, str]) -> None:
        self.index = index
        self.data_dir = data_dir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "FXDESK_DATA_DIR": str(self.data_dir)}
        log = (self.data_dir / "serve.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fxdesk", "serve", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        path = self.data_dir / "serve.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=f"http://{self.host}", timeout=2) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"instance {self.index} exited:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"instance {self.index} not ready in {seconds} s:\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def instance_env(database_url: str, nats_urls: list[str], replicas: int) -> dict[str, str]:
    """What every instance of one deployment shares (the README's list)."""
    return {
        "FXDESK_DATABASE_URL": database_url,
        "FXDESK_NATS_URL": ",".join(nats_urls),
        "FXDESK_NATS_STREAM_REPLICAS": str(replicas),
        "FXDESK_SECRET_KEY": secrets.token_urlsafe(48),
        "FXDESK_RATES_AUTOSTART": "false",
        # Loopback only: any outbound URL points at a closed local port.
        "FXDESK_CBR_BASE_URL": "http://127.0.0.1:9/",
        "FXDESK_CBR_MIRROR_URL": "http://127.0.0.1:9/",
        "FXDESK_APILAYER_BASE_URL": "http://127.0.0.1:9/",
        "FXDESK_COOKIE_SECURE": "false",
        "FXDESK_LOG_LEVEL": "WARNING",
    }


async def account(host: str, name: str) -> str:
    """Register `name` and sign in: the session token (the cookie's value)."""
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as client:
        created = await client.post(
            "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        login = await client.post(
            "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        return login.cookies["session_token"]


@dataclass
class Received:
    seq: int
    task_id: int
    at: float  # time.monotonic() on receipt


@dataclass
class Receiver:
    """A socket client on the tasks channel that follows one instance and, when that instance
    dies, resumes with `since` on another, as the page does."""

    name: str
    token: str
    events: list[Received] = field(default_factory=list)
    resumes: int = 0
    task: asyncio.Task[None] | None = None
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0

    def follow(self, hosts: list[str]) -> None:
        """Read from hosts[0]; on a lost connection move to the next host that answers."""
        self.task = asyncio.create_task(self._run(hosts), name=f"receiver-{self.name}")

    async def _run(self, hosts: list[str]) -> None:
        attempt = 0
        since: int | None = 0
        while True:
            host = hosts[attempt % len(hosts)]
            with contextlib.suppress(OSError, ConnectionClosed, TimeoutError):
                await self._read(host, since)
            attempt += 1
            self.resumes += 1
            since = self.last_seq
            await asyncio.sleep(0.2)

    async def _read(self, host: str, since: int | None) -> None:
        async with connect(
            f"ws://{host}/api/v1/ws",
            additional_headers={"Cookie": f"session_token={self.token}"},
            open_timeout=5,
            max_queue=None,
        ) as ws:
            await self._subscribe(ws, since)
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "resync":
                    raise AssertionError(f"{self.name} was told to resync: {message}")
                if "event" in message and message["event"].startswith("task_"):
                    task = message["task"]
                    self.events.append(Received(message["seq"], task["id"], time.monotonic()))

    async def _subscribe(self, ws: ClientConnection, since: int | None) -> None:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello", hello
        await ws.send(json.dumps({"op": "subscribe", "channels": ["tasks"], "since": since}))
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message.get("type") == "subscribed":
                self.subscribed.set()
                return

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@dataclass
class Write:
    task_id: int
    host: str
    sent: float  # time.monotonic() when the request went out
    answered: float


@dataclass
class Writer:
    """Creates tasks one after another, `rate` per second at most, on the hosts in turn.

    A write whose instance is down (or dies mid-request) moves to the next host; what matters
    is that every write that got a 2xx is delivered, and that none to a live instance fails."""

    name: str
    token: str
    rate: float
    done: list[Write] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (host, why)
    task: asyncio.Task[None] | None = None

    def run(self, hosts: list[str], dead: set[str]) -> None:
        self.task = asyncio.create_task(self._run(hosts, dead), name=f"writer-{self.name}")

    async def _run(self, hosts: list[str], dead: set[str]) -> None:
        headers = {"Cookie": f"session_token={self.token}"}
        n = 0
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            while True:
                host = hosts[n % len(hosts)]
                n += 1
                if host in dead:
                    continue
                sent = time.monotonic()
                try:
                    response = await client.post(
                        f"http://{host}/api/v1/tasks", json={"title": f"{self.name} #{n}"}
                    )
                except httpx.HTTPError as exc:
                    self.failed.append((host, type(exc).__name__))
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code == 201:
                    self.done.append(Write(response.json()["id"], host, sent, time.monotonic()))
                else:
                    self.failed.append((host, f"{response.status_code} {response.text[:200]}"))
                pause = 1 / self.rate - (time.monotonic() - sent)
                if pause > 0:
                    await asyncio.sleep(pause)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def ready_status(host: str) -> int | None:
    """The instance's /ready status code, or None when it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(f"http://{host}/ready")).status_code
    except httpx.HTTPError:
        return None
