"""Shared fixtures: a template database migrated once, a fresh copy and app per test."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from fxdesk.app import create_app
from fxdesk.auth.sessions import open_session
from fxdesk.config import Settings
from fxdesk.db import Database
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.users.models import Role, User
from fxdesk.users.schemas import username_key
from tests.natscluster import NatsCluster
from tests.pg import Databases, postgres_server

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
        self, key: str, directory: Path, build: Callable[[str], Awaitable[None]]
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


@pytest.fixture
def settings(tmp_path: Path, db_url: str, nats_server: EmbeddedNats) -> Settings:
    return make_settings(tmp_path, db_url, nats_url=nats_server.url)


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


async def issue_token(app: object, user: User, user_agent: str = "tests") -> str:
    """A token of a new server-side session for `user` (what a login creates)."""
    token, _ = await open_session(
        app.state.database,  # type: ignore[attr-defined]
        app.state.tokens,  # type: ignore[attr-defined]
        user,
        user_agent=user_agent,
        address="127.0.0.1",
    )
    return token


def sqlite_session_token(app: object, db_path: Path, username: str) -> str:
    """A token of a new session for `username`, made with plain sqlite3 (for sync callers such
    as schemathesis cases, whose app runs in a loop of its own)."""
    import sqlite3
    import uuid
    from datetime import UTC, datetime

    codec = app.state.tokens  # type: ignore[attr-defined]
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


async def sign_in(app: object, client: httpx.AsyncClient, user: User) -> str:
    """Give `client` a session cookie for `user` without spending an Argon2 verification."""
    token = await issue_token(app, user)
    client.cookies.set("session_token", token)
    return token
