"""Database engine, SQLite tuning, migrations and the one-request-one-transaction session."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from alembic import command
from alembic.config import Config as AlembicConfig
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util.concurrency import await_

from fxdesk import sqlite_driver

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SQLITE_BUSY_TIMEOUT_MS = 15_000
MIGRATION_LOCK_KEY = 0x66786465736B  # "fxdesk": the advisory lock migrating instances queue on

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite drops the zone, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        """On SQLite the stored text is read in one C call: parsing it naive, then
        `replace(tzinfo=UTC)`, costs six times more, and a page of tasks reads 250 of them."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_utc


def _sqlite_utc(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + "+00:00")  # stored naive, in UTC
    except ValueError:  # a value written with its offset
        return datetime.fromisoformat(value).astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _switch_to_wal(cursor: Any) -> None:
    """PRAGMA journal_mode=WAL, waiting (without blocking the loop) while it is refused.

    On a new file, connections opening together race to switch it: SQLite refuses a switch
    while another connection is in the middle of one with SQLITE_BUSY at once, not after the
    busy timeout. The switch is persistent, so the loser's next try finds WAL already on.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await_(asyncio.sleep(0.02))


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, a busy timeout, and explicit transactions for writers only.

    pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN is the
    one SQLite sees. Writers take the write lock up front (BEGIN IMMEDIATE), so two writers
    queue on the busy timeout instead of failing with SQLITE_BUSY when a read snapshot cannot
    be upgraded. Readers run each statement in its own implicit transaction: in WAL mode that
    never blocks anyone and saves two round trips to the database thread per request.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL needs the lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("fxdesk_write", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _tune_postgresql(engine: AsyncEngine) -> None:
    """A pooled connection whose server went away is replaced when it is checked out.

    SQLAlchemy's pre-ping asks the server on every checkout, which on asyncpg is three round
    trips (BEGIN, a ping, ROLLBACK) before a request's first statement. A server that ends a
    session (a restart, `pg_terminate_backend`, an idle timeout) closes its socket, and the
    event loop has already seen that when the connection is next checked out: the check costs
    nothing. A connection that dies while in use fails its statement, and SQLAlchemy then
    drops every connection of the pool opened before it.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError()


class Database:
    """The engine pair (readers and writers share one pool) and their session factories."""

    def __init__(self, url: str, *, pool_size: int = 20, max_overflow: int = 5) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        driver: dict[str, Any] = {}
        if url.startswith("sqlite+aiosqlite"):
            driver["module"] = sqlite_driver.dbapi()  # one trip to its thread per statement
        self.engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            # A failed statement's message must not carry its parameters (hashes, tokens) into
            # a log line.
            hide_parameters=True,
            **driver,
        )
        self.write_engine = self.engine.execution_options(fxdesk_write=True)
        readers = self.engine
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        else:
            _tune_postgresql(self.engine)
            # Readers run each statement in its own transaction, as on SQLite: under READ
            # COMMITTED a transaction's statements each see their own snapshot anyway, and
            # BEGIN and COMMIT would be two more round trips per read.
            readers = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read_engine = readers
        self._readers = async_sessionmaker(readers, expire_on_commit=False)
        self._writers = async_sessionmaker(self.write_engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queueing this process's writers here, in order,
        # is fairer and far faster than letting them collide on the busy handler, whose
        # sleeps grow to 100 ms; other processes still wait on the busy timeout.
        self._write_turn = asyncio.Lock() if self.is_sqlite else None
        # Called after a commit that wrote outbox rows, with the channels of its events: wakes
        # the relay with no polling delay, and lets this instance's caches drop what the
        # commit changed before its response goes out (other instances hear the events).
        self.outbox_listeners: list[Callable[[frozenset[str]], None]] = []

    @asynccontextmanager
    async def session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits at the end, rolls back on any exception."""
        maker = self._writers if write else self._readers
        async with contextlib.AsyncExitStack() as stack:
            if write and self._write_turn is not None:
                await stack.enter_async_context(self._write_turn)
            session = await stack.enter_async_context(maker())
            try:
                yield session
                # A request that never touched the database has nothing to commit: skipping
                # the call saves a trip through SQLAlchemy's async bridge on every such GET.
                if session.in_transaction():
                    await session.commit()
            except BaseException:
                if session.in_transaction():
                    await session.rollback()
                raise
            channels = session.info.pop("fxdesk_outbox_channels", None)
        if channels:
            committed = frozenset(channels)
            for listener in self.outbox_listeners:
                listener(committed)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        """A connection for Core reads (statements of tables and columns, rows or values
        back): no ORM session to set up, track and close around them, a third of the cost of
        a one-statement read. Each statement runs in its own transaction, as a reading
        session's do."""
        async with self._read_engine.connect() as connection:
            yield connection

    async def migrate(self) -> None:
        """Upgrade to head; instances starting together take turns.

        On SQLite the write lock of BEGIN IMMEDIATE does it. On PostgreSQL a session-level
        advisory lock is held on a connection of its own while the upgrade runs on another, so
        the upgrade starts only after the instance before it has committed.
        """
        if self.is_sqlite:
            async with self.write_engine.begin() as conn:
                await conn.run_sync(_upgrade_to_head)
            return
        async with self.engine.connect() as lock:
            await lock.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            await lock.commit()
            try:
                async with self.write_engine.begin() as conn:
                    await conn.run_sync(_upgrade_to_head)
            finally:
                await lock.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                await lock.commit()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def _upgrade_to_head(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.session(write=request.method not in SAFE_METHODS) as session:
        yield session


# "function" scope: the commit finishes before the response is sent, so a 2xx means stored.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
