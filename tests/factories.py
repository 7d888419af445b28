"""Plain helpers the test modules share: settings, users, sign-in, clients, ports, waiting.

Fixtures live in conftest.py; what is here is called, not requested. Nothing here imports a
test module, so conftest.py, natscluster.py and pg.py (and bench/) may all import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from fastapi import FastAPI
from nats.js.errors import NotFoundError

from fxdesk.auth.sessions import open_session
from fxdesk.config import Settings
from fxdesk.users.models import Role, User
from fxdesk.users.schemas import username_key

TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
ALLOWED_ORIGIN = "https://allowed.example"
BASE_URL = "https://testserver"
PASSWORD = "correct-horse-battery"

# --------------------------------------------------------------------------- settings, ports


def make_settings(data_dir: Path, db: Path | str, **overrides: object) -> Settings:
    """Test settings over `db`: a SQLite file's path or any database URL."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": db if isinstance(db, str) else f"sqlite+aiosqlite:///{db}",
        "secret_key": TEST_SECRET,
        "allowed_origins": [ALLOWED_ORIGIN],
        "allowed_hosts": ["testserver"],  # BASE_URL's host (loopback names are always allowed)
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open together, so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


# --------------------------------------------------------------------------- NATS


async def purge_stream(url: str, stream: str = "FXDESK") -> None:
    """Start each test with an empty stream: its fresh database starts `seq` at 1 again."""
    nc = await nats.connect(url)
    try:
        await nc.jetstream().purge_stream(stream)
    except NotFoundError:
        pass
    finally:
        await nc.close()


async def quiet(_error: Exception) -> None:
    """A nats-py `error_cb` that logs nothing: refused connections are what such tests expect."""
    return None


# --------------------------------------------------------------------------- users, sessions


async def add_user(
    app: FastAPI,
    name: str,
    role: Role = Role.user,
    *,
    password_hash: str = "x",
    is_active: bool = True,
) -> User:
    """Insert a user straight into `app`'s database (no Argon2 hashing: pass a ready hash)."""
    async with app.state.database.session() as session:
        user = User(
            username=name,
            username_key=username_key(name),
            password_hash=password_hash,
            role=role,
            is_active=is_active,
        )
        session.add(user)
    return user


async def issue_token(app: FastAPI, user: User, user_agent: str = "tests") -> str:
    """A token of a new server-side session for `user` (what a login creates)."""
    token, _ = await open_session(
        app.state.database,
        app.state.tokens,
        user,
        user_agent=user_agent,
        address="127.0.0.1",
    )
    return token


def sqlite_session_token(app: FastAPI, db_path: Path, username: str) -> str:
    """A token of a new session for `username`, made with plain sqlite3 (for sync callers such
    as schemathesis cases, whose app runs in a loop of its own)."""
    codec = app.state.tokens
    now = datetime.now(UTC).replace(microsecond=0)
    expires_at = now + codec.lifetime
    session_id = uuid.uuid4().hex
    stamps = (now, now, expires_at)  # as SQLAlchemy writes them to SQLite
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT id, token_version, role FROM users WHERE username = ?", (username,)
        ).fetchone()
        conn.execute(
            "INSERT INTO user_sessions (id, user_id, created_at, last_seen_at, expires_at, "
            "user_agent, address) VALUES (?, ?, ?, ?, ?, 'fuzz', '127.0.0.1')",
            (session_id, row[0], *(when.strftime("%Y-%m-%d %H:%M:%S.%f") for when in stamps)),
        )
    user = User(id=row[0], token_version=row[1], role=Role(row[2]))
    return str(codec.issue(user, session_id, expires_at))


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text


async def sign_in(app: FastAPI, client: httpx.AsyncClient, user: User) -> str:
    """Give `client` a session cookie for `user` without spending an Argon2 verification."""
    token = await issue_token(app, user)
    client.cookies.set("session_token", token)
    return token


async def signed_in(
    app: FastAPI,
    make_client: Callable[..., httpx.AsyncClient],
    make_user: Callable[..., Any],
    role: Role = Role.user,
    **client_options: Any,
) -> tuple[User, httpx.AsyncClient]:
    """A new user of `role` and a new client (from the fixtures' factories) signed in as it."""
    user: User = await make_user(role=role)
    client = make_client(**client_options)
    await sign_in(app, client, user)
    return user, client


# --------------------------------------------------------------------------- HTTP clients


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def asgi_client(
    app: FastAPI,
    base_url: str = BASE_URL,
    address: tuple[str, int] | None = None,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """A client that calls `app` in-process; `address` is the socket peer it seems to come from."""
    transport = (
        httpx.ASGITransport(app=app)
        if address is None
        else httpx.ASGITransport(app=app, client=address)
    )
    return httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs)


def api_client(host: str, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """A client of an instance served at `host` (host:port), with `token` as its bearer."""
    return httpx.AsyncClient(
        base_url=f"http://{host}", headers=bearer(token) if token else None, **kwargs
    )


def metric(text: str, name: str) -> float:
    """A counter's value in /metrics text (counters are per process: tests compare deltas)."""
    line = next((x for x in text.splitlines() if x.startswith(f"{name} ")), f"{name} 0")
    return float(line.split()[1])


async def read_metric(host: str, name: str) -> float:
    async with api_client(host) as client:
        return metric((await client.get("/metrics")).text, name)


# --------------------------------------------------------------------------- waiting, processes


async def wait_for(condition: Callable[[], bool], seconds: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds (True) or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True


async def until(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Poll `condition` every 0.1 s; fail the test if it does not hold within `seconds`."""
    if not await wait_for(lambda: bool(condition()), seconds, interval=0.1):
        raise AssertionError(f"not within {seconds} s: {what}")


async def seconds_until(check: Callable[[], Awaitable[bool]], limit: float, what: str) -> float:
    """Seconds until the async `check` holds, polled every 10 ms; fails the test after `limit`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < limit, f"not within {limit} s: {what}"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def process_gone(pid: int) -> bool:
    """True once the pid has exited; a zombie nobody has reaped yet counts as exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    except NotADirectoryError:  # no /proc: not Linux
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return state.split()[1] == "Z"


async def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    return await wait_for(lambda: process_gone(pid), seconds)


def nats_children(parent: int) -> list[int]:
    """The pids of the nats-server processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and name == "nats-server":
            found.append(int(entry.name))
    return found
