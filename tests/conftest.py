"""Shared fixtures: a template database migrated once, a fresh copy and app per test."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from fxdesk.app import create_app
from fxdesk.config import Settings
from fxdesk.db import Database
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.users.models import Role, User
from fxdesk.users.schemas import username_key

TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
ALLOWED_ORIGIN = "https://allowed.example"
BASE_URL = "https://testserver"
PASSWORD = "correct-horse-battery"

# No test may reach cbr.ru: the rates scheduler never polls on its own, and both CBR URLs name a
# closed loopback port. In the environment, so `fxdesk serve` subprocesses inherit it too.
os.environ["FXDESK_RATES_AUTOSTART"] = "false"
os.environ["FXDESK_CBR_BASE_URL"] = "http://127.0.0.1:9/scripts"
os.environ["FXDESK_CBR_MIRROR_URL"] = "http://127.0.0.1:9/daily_json.js"
os.environ.pop("FXDESK_APILAYER_API_KEY", None)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated by Alembic for the whole run; tests get byte copies of it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite+aiosqlite:///{path}")

    async def migrate() -> None:
        await database.migrate()
        await database.dispose()

    asyncio.run(migrate())
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedNats]:
    """One real nats-server for the run; each app connects to it as to an external cluster."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"), port=free_port(), log_level="WARNING")
    await server.start()
    yield server
    await server.stop()


async def purge_stream(url: str, stream: str = "FXDESK") -> None:
    """Start each test with an empty stream: its fresh database starts `seq` at 1 again."""
    nc = await nats.connect(url)
    try:
        await nc.jetstream().purge_stream(stream)
    except NotFoundError:
        pass
    finally:
        await nc.close()


@pytest.fixture(scope="session")
def password_hash() -> str:
    """Argon2id hash of PASSWORD, computed once: fixtures insert users without re-hashing."""
    return PasswordHash((Argon2Hasher(),)).hash(PASSWORD)


def make_settings(data_dir: Path, db_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": f"sqlite+aiosqlite:///{db_path}",
        "secret_key": TEST_SECRET,
        "allowed_origins": [ALLOWED_ORIGIN],
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, template_db: Path, nats_server: EmbeddedNats) -> Settings:
    db_path = tmp_path / "fxdesk.db"
    shutil.copyfile(template_db, db_path)
    return make_settings(tmp_path, db_path, nats_url=nats_server.url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    assert settings.nats_url
    await purge_stream(settings.nats_url)
    application = create_app(settings, migrate=False)
    async with application.router.lifespan_context(application):
        yield application


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client(app: object) -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    def factory(**kwargs: object) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url=BASE_URL,
            **kwargs,  # type: ignore[arg-type]
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: ClientFactory) -> httpx.AsyncClient:
    return make_client()


UserFactory = Callable[..., Awaitable[User]]


@pytest.fixture
def make_user(app: object, password_hash: str) -> UserFactory:
    counter = iter(range(1, 1_000_000))

    async def factory(
        username: str | None = None, role: Role = Role.user, is_active: bool = True
    ) -> User:
        name = username or f"{role.value}{next(counter)}"
        database: Database = app.state.database  # type: ignore[attr-defined]
        async with database.session() as session:
            user = User(
                username=name,
                username_key=username_key(name),
                password_hash=password_hash,
                role=role,
                is_active=is_active,
            )
            session.add(user)
        return user

    return factory


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text


def sign_in(app: object, client: httpx.AsyncClient, user: User) -> str:
    """Give `client` a session cookie for `user` without spending an Argon2 verification."""
    token, _ = app.state.tokens.issue(user)  # type: ignore[attr-defined]
    client.cookies.set("session_token", token)
    return str(token)
