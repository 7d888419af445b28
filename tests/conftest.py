"""Shared fixtures: a template database migrated once, a fresh copy and app per test.

The plain helpers the tests call (settings, users, sign-in, clients, ports) are in factories.py.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from fxdesk.app import create_app
from fxdesk.config import Settings
from fxdesk.db import Database
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.users.models import Role, User
from tests.factories import PASSWORD, add_user, asgi_client, free_port, make_settings, purge_stream
from tests.natscluster import NatsCluster
from tests.pg import Databases, postgres_server

# No test may reach cbr.ru: the rates scheduler never polls on its own, and both CBR URLs name a
# closed loopback port. In the environment, so `fxdesk serve` subprocesses inherit it too.
os.environ["FXDESK_RATES_AUTOSTART"] = "false"
os.environ["FXDESK_CBR_BASE_URL"] = "http://127.0.0.1:9/scripts"
os.environ["FXDESK_CBR_MIRROR_URL"] = "http://127.0.0.1:9/daily_json.js"
os.environ.pop("FXDESK_APILAYER_API_KEY", None)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated by Alembic for the whole run; tests get byte copies of it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite+aiosqlite:///{path}")

    async def migrate() -> None:
        await database.migrate()
        await database.dispose()

    asyncio.run(migrate())
    return path


class DbTemplate:
    """A migrated database that tests copy: a SQLite file, or a PostgreSQL template database.

    `fresh()` gives the URL of a new copy; `derive()` builds (once) a template with more in it.
    """

    def __init__(
        self,
        backend: str,
        *,
        path: Path | None = None,
        pg: Databases | None = None,
        name: str | None = None,
    ) -> None:
        self.backend = backend
        self.path = path
        self.pg = pg
        self.name = name
        self._derived: dict[str, DbTemplate] = {}
        self.created: list[str] = []

    @property
    def url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.path}"
        assert self.pg is not None and self.name is not None
        return self.pg.url(self.name)

    def fresh(self, directory: Path, stem: str = "fxdesk") -> str:
        if self.backend == "sqlite":
            assert self.path is not None
            target = directory / f"{stem}.db"
            shutil.copyfile(self.path, target)
            return f"sqlite+aiosqlite:///{target}"
        assert self.pg is not None
        name = self.pg.create(template=self.name)
        self.created.append(name)
        return self.pg.url(name)

    def derive(
        self, key: str, directory: Path, build: Callable[[str], Coroutine[Any, Any, None]]
    ) -> DbTemplate:
        if key not in self._derived:
            url = self.fresh(directory, stem=key)
            if self.backend == "sqlite":
                self.created.clear()  # a template lives for the run
            else:
                self.created.remove(url.rsplit("/", 1)[1])
            asyncio.run(build(url))
            if self.backend == "sqlite":
                derived = DbTemplate("sqlite", path=Path(url.split("///", 1)[1]))
            else:
                derived = DbTemplate("postgresql", pg=self.pg, name=url.rsplit("/", 1)[1])
            self._derived[key] = derived
        return self._derived[key]

    def drop_created(self) -> None:
        while self.created and self.pg is not None:
            self.pg.drop(self.created.pop())


@pytest.fixture(scope="session")
def postgres() -> Iterator[Databases]:
    """A real PostgreSQL for the run (see tests/pg.py), started the first time a test needs it."""
    with postgres_server() as admin_url:
        yield Databases(admin_url)


@pytest.fixture(scope="session")
def pg_template(postgres: Databases) -> DbTemplate:
    name = postgres.create()
    template = DbTemplate("postgresql", pg=postgres, name=name)
    database = Database(template.url)

    async def migrate() -> None:
        await database.migrate()
        await database.dispose()

    asyncio.run(migrate())
    return template


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database the test runs on; database-facing tests run on both."""
    return str(request.param)


@pytest.fixture
def db_template(
    backend: str, request: pytest.FixtureRequest, template_db: Path
) -> Iterator[DbTemplate]:
    if backend == "sqlite":
        template = DbTemplate("sqlite", path=template_db)
    else:
        template = request.getfixturevalue("pg_template")
    yield template
    template.drop_created()


@pytest.fixture
def db_url(db_template: DbTemplate, tmp_path: Path) -> str:
    """A fresh migrated database for this test, on the test's backend."""
    return db_template.fresh(tmp_path)


@pytest.fixture(scope="session")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedNats]:
    """One real nats-server for the run; each app connects to it as to an external cluster."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"), port=free_port(), log_level="WARNING")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def nats_url(nats_server: EmbeddedNats) -> str:
    """The run's nats-server, its stream purged for this test (whose database starts afresh)."""
    await purge_stream(nats_server.url)
    return nats_server.url


@pytest.fixture(scope="session")
async def _nats_cluster_for_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[NatsCluster]:
    async with NatsCluster(tmp_path_factory.mktemp("nats-cluster")) as cluster:
        yield cluster


@pytest.fixture
async def nats_cluster(_nats_cluster_for_run: NatsCluster) -> AsyncIterator[NatsCluster]:
    """A real 3-node JetStream cluster, started once per run (see tests/natscluster.py).

    Each test finds every node up and no stream; whatever it killed is restarted afterwards.
    """
    cluster = _nats_cluster_for_run
    yield cluster
    await cluster.heal()
    await cluster.delete_streams()


@pytest.fixture(scope="session")
def password_hash() -> str:
    """Argon2id hash of PASSWORD, computed once: fixtures insert users without re-hashing."""
    return PasswordHash((Argon2Hasher(),)).hash(PASSWORD)


@pytest.fixture
def settings(tmp_path: Path, db_url: str, nats_server: EmbeddedNats) -> Settings:
    return make_settings(tmp_path, db_url, nats_url=nats_server.url)


@pytest.fixture
def live_settings(settings: Settings, nats_url: str) -> Settings:
    """`settings` for a test that serves apps of its own (no `app` fixture), stream purged."""
    assert settings.nats_url == nats_url
    return settings


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    assert settings.nats_url
    await purge_stream(settings.nats_url)
    application = create_app(settings, migrate=False)
    async with application.router.lifespan_context(application):
        yield application


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client(app: FastAPI) -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    def factory(**kwargs: Any) -> httpx.AsyncClient:
        client = asgi_client(app, **kwargs)
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
def make_user(app: FastAPI, password_hash: str) -> UserFactory:
    counter = iter(range(1, 1_000_000))

    async def factory(
        username: str | None = None, role: Role = Role.user, is_active: bool = True
    ) -> User:
        name = username or f"{role.value}{next(counter)}"
        return await add_user(app, name, role, password_hash=password_hash, is_active=is_active)

    return factory
