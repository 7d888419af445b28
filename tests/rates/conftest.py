"""Rates test fixtures: a fake cbr.ru at the transport serving the real recorded responses."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from fxdesk.config import Settings
from fxdesk.db import Database, utcnow
from fxdesk.events.models import OutboxEvent
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.rates.cbr.daily import parse_daily
from fxdesk.rates.ingest import ingest_table
from fxdesk.rates.models import FetchLog, Rate
from fxdesk.users.models import Role
from tests.conftest import ClientFactory, DbTemplate, UserFactory
from tests.factories import ALLOWED_ORIGIN, make_settings, signed_in

DAILY_0319 = "XML_daily_2026-03-19.xml"
DAILY_0425 = "XML_daily_2026-04-25.xml"
MIRROR_2021 = "daily_json_2021-12-31.js"
CHALLENGE = (
    b"<!DOCTYPE html><html><head><title>DDoS-Guard</title></head>"
    b"<body>Checking your browser before accessing cbr.ru</body></html>"
)


def fixtures_dir() -> Path:
    """FXDESK_FIXTURES_DIR (the fixtures root or its cbr/ folder), else the shared checkout."""
    override = os.environ.get("FXDESK_FIXTURES_DIR")
    if override:
        root = Path(override)
        return root / "cbr" if (root / "cbr").is_dir() else root
    return Path(__file__).resolve().parents[3] / "shared/fixtures/cbr"


def fixture_bytes(name: str) -> bytes:
    path = fixtures_dir() / name
    if not path.is_file():
        raise RuntimeError(f"CBR fixture {path} not found (FXDESK_FIXTURES_DIR)")
    return path.read_bytes()


def moscow_noon(day: dt.date) -> dt.datetime:
    """A clock reading for noon of `day` in Moscow (09:00 UTC)."""
    return dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=dt.UTC)


class FakeCbr:
    """cbr.ru and its mirror, answered at the transport from fixture bytes.

    `daily` answers XML_daily.asp without a date; `by_date` answers date_req=; a status int
    answers with that HTTP status. `gate`, when set, holds every request until it opens.
    """

    def __init__(self) -> None:
        self.daily: bytes | int = fixture_bytes(DAILY_0425)
        self.by_date: dict[dt.date, bytes | int] = {}
        self.mirror: bytes | int = 404
        self.english: bytes | int = 404
        self.requests: list[httpx.Request] = []
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()  # set by the first request
        self.in_flight = 0
        self.max_in_flight = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def paths(self) -> list[str]:
        return [request.url.path.rsplit("/", 1)[-1] for request in self.requests]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.arrived.set()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            return self._answer(request)
        finally:
            self.in_flight -= 1

    def _answer(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        answer: bytes | int
        if name == "XML_daily.asp":
            requested = request.url.params.get("date_req")
            if requested is None:
                answer = self.daily
            else:
                day = dt.datetime.strptime(requested, "%d/%m/%Y").date()
                answer = self.by_date.get(day, 404)
        elif name == "XML_daily_eng.asp":
            answer = self.english
        elif name == "daily_json.js":
            answer = self.mirror
        else:
            answer = 404
        if isinstance(answer, int):
            return httpx.Response(answer, text="fake cbr: no such page")
        media = "application/javascript" if name.endswith(".js") else "text/xml"
        return httpx.Response(200, content=answer, headers={"Content-Type": media})


def rates_settings(
    tmp_path: Path, template: DbTemplate, nats_url: str, **overrides: Any
) -> Settings:
    """Settings over a copy of `template`, with retries off: a failing fake answers at once."""
    values: dict[str, Any] = {"cbr_retries": 0, "cbr_backoff_seconds": 0, **overrides}
    return make_settings(tmp_path, template.fresh(tmp_path), nats_url=nats_url, **values)


@pytest.fixture
def settings(tmp_path: Path, db_template: DbTemplate, nats_server: EmbeddedNats) -> Settings:
    return rates_settings(tmp_path, db_template, nats_server.url)


async def store_tables(url: str, *names: str) -> None:
    """Ingest fixture tables straight into a database, their events marked as already sent."""
    database = Database(url)
    try:
        for name in names:
            async with database.session() as session:
                await ingest_table(session, parse_daily(fixture_bytes(name)))
        async with database.session() as session:
            await session.execute(update(OutboxEvent).values(published_at=utcnow()))
    finally:
        await database.dispose()


@pytest.fixture
def loaded_template(
    db_template: DbTemplate, tmp_path_factory: pytest.TempPathFactory
) -> DbTemplate:
    """The migrated template with the 2026-03-19 and 2026-04-25 tables stored, built once."""

    async def build(url: str) -> None:
        await store_tables(url, DAILY_0319, DAILY_0425)

    return db_template.derive("loaded", tmp_path_factory.mktemp("loaded"), build)


@pytest.fixture
def fake_cbr(app: Any) -> FakeCbr:
    fake = FakeCbr()
    app.state.rates.cbr_transport = fake.transport()
    app.state.rates.clock = lambda: moscow_noon(dt.date(2026, 11, 23))
    return fake


@pytest.fixture
async def user_client(app: Any, make_client: ClientFactory, make_user: UserFactory) -> Any:
    _, client = await signed_in(app, make_client, make_user, Role.user)
    return client


@pytest.fixture
async def admin_client(app: Any, make_client: ClientFactory, make_user: UserFactory) -> Any:
    origin = {"Origin": ALLOWED_ORIGIN}
    _, client = await signed_in(app, make_client, make_user, Role.admin, headers=origin)
    return client


async def fetch(app: Any, fake: FakeCbr, body: bytes | int | str) -> Any:
    """Serve `body` as the newest table and run one fetch through the real scheduler."""
    fake.daily = fixture_bytes(body) if isinstance(body, str) else body
    return await app.state.rates.scheduler.run_once("manual")


async def outbox(app: Any) -> list[dict[str, Any]]:
    async with app.state.database.session(write=False) as session:
        rows = await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        return [{"event": row.event_type, **json.loads(row.payload)} for row in rows]


async def count(app: Any, model: Any) -> int:
    async with app.state.database.session(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def fetch_log(app: Any) -> list[FetchLog]:
    async with app.state.database.session(write=False) as session:
        return list(await session.scalars(select(FetchLog).order_by(FetchLog.id)))


async def rate_rows(app: Any, where: Callable[[Any], Any] | None = None) -> list[Rate]:
    async with app.state.database.session(write=False) as session:
        query = select(Rate).order_by(Rate.date, Rate.code)
        return list(await session.scalars(query if where is None else query.where(where(Rate))))
