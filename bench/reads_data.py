"""The data behind bench/reads_bench.py, loaded into a migrated database before the server starts.

Works on SQLite and PostgreSQL alike: rate tables go through fxdesk's own ingestion
(`rates.ingest.ingest_table`), chat messages through `chat.service.post_message`, and the
task board is bulk-inserted with SQLAlchemy core over fxdesk's models (100 000 one by one
through the service would take minutes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select, text

from fxdesk.auth.ratelimit import SlidingWindowCounter
from fxdesk.chat import service as chat_service
from fxdesk.db import Database
from fxdesk.rates.cbr.daily import parse_daily
from fxdesk.rates.cbr.fields import unit_rate
from fxdesk.rates.cbr.records import CbrTable
from fxdesk.rates.ingest import ingest_table
from fxdesk.tasks.models import Priority, Task, TaskHistory, TaskStatus
from fxdesk.users.models import User

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "cbr"
NEWEST = dt.date(2026, 4, 25)  # XML_daily_2026-04-25.xml: the table /rates/latest answers
SERIES_DAYS = 90  # a table on each of the 90 days up to NEWEST (the series route's range)
SERIES_START = NEWEST - dt.timedelta(days=SERIES_DAYS - 1)
CHAT_MESSAGES = 200
CHUNK = 10_000
PRIORITIES = tuple(Priority)
FINISH = timedelta(seconds=20)  # a done task was finished this long after its creation


@dataclass(frozen=True)
class Loaded:
    """What the bench needs to know about the data: a task that has a history."""

    task_id: int


def _varied(table: CbrTable, day: dt.date, rng: random.Random) -> CbrTable:
    """The fixture's rows on another day, each value moved by at most ±2 % (deterministic)."""
    rates = []
    for rate in table.rates:
        value = (rate.value * Decimal(1 + rng.uniform(-0.02, 0.02))).quantize(rate.value)
        rates.append(
            dataclasses.replace(rate, value=value, unit_rate=unit_rate(value, rate.nominal))
        )
    return CbrTable(date=day, rates=tuple(rates), source=table.source, body_hash=f"bench-{day}")


async def load_rates(database: Database) -> int:
    """The two recorded tables of the series' range, then synthetic tables for its other days.

    The newest goes in first, so every later one is history: stored quietly, no events.
    """
    newest = parse_daily((FIXTURES / "XML_daily_2026-04-25.xml").read_bytes())
    model = parse_daily((FIXTURES / "XML_daily_2026-03-19.xml").read_bytes())
    tables = [newest, model]
    rng = random.Random(7)
    for back in range(1, SERIES_DAYS):
        day = NEWEST - dt.timedelta(days=back)
        if day != model.date:
            tables.append(_varied(model, day, rng))
    for table in tables:
        async with database.session() as session:
            await ingest_table(session, table)
    return len(tables)


async def load_chat(database: Database, author: User) -> None:
    limiter = SlidingWindowCounter("chat", CHAT_MESSAGES + 1, 3600)
    for i in range(CHAT_MESSAGES):
        async with database.session() as session:
            text_ = f"Bench message {i}: USD/EUR looks steady today, see the board"
            await chat_service.post_message(session, author, text_, limiter)


def _task_rows(count: int, user_id: int) -> list[dict[str, object]]:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        at = base + timedelta(seconds=i * 37)
        done = i % 3 == 0
        rows.append(
            {
                "title": f"Seeded task {i}",
                "title_key": f"seeded task {i}",
                "description": f"Description of seeded task number {i}",
                "status": TaskStatus.done if done else TaskStatus.open,
                "priority": PRIORITIES[i % 4],
                "created_by_id": user_id,
                "created_at": at,
                "updated_at": at + FINISH if done else at,
                "finished_by_id": user_id if done else None,
                "finished_at": at + FINISH if done else None,
                "version": 2 if done else 1,
            }
        )
    return rows


def _history(
    task_id: int, actor_id: int, action: str, changes: str, at: datetime
) -> dict[str, object]:
    return {
        "task_id": task_id,
        "actor_id": actor_id,
        "action": action,
        "changes": changes,
        "at": at,
    }


async def load_tasks(database: Database, count: int, user_id: int) -> int:
    """`count` tasks, each with its history (created; finished for every third), bulk-inserted.

    Returns the id of a finished task from the middle of the board."""
    rows = _task_rows(count, user_id)
    async with database.write_engine.begin() as conn:
        for start in range(0, count, CHUNK):
            await conn.execute(insert(Task.__table__), rows[start : start + CHUNK])
        stored = (await conn.execute(select(Task.id, Task.status, Task.created_at))).all()
        history = []
        for task_id, status, at in stored:
            history.append(_history(task_id, user_id, "created", "{}", at))
            if status == TaskStatus.done:
                changes = json.dumps({"status": ["open", "done"]})
                history.append(_history(task_id, user_id, "finished", changes, at + FINISH))
        for start in range(0, len(history), CHUNK):
            await conn.execute(insert(TaskHistory.__table__), history[start : start + CHUNK])
    done = [task_id for task_id, status, _ in stored if status == TaskStatus.done]
    return done[len(done) // 2]


async def load_all(url: str, username: str, tasks: int) -> Loaded:
    """Everything the bench reads, into the (migrated) database at `url`; prints what it took."""
    started = time.perf_counter()
    database = Database(url)
    try:
        async with database.session() as session:
            user = await session.scalar(select(User).where(User.username == username))
            assert user is not None, f"{username} must exist before the data is loaded"
        tables = await load_rates(database)
        await load_chat(database, user)
        task_id = await load_tasks(database, tasks, user.id)
        # Statistics, and on PostgreSQL the visibility map autovacuum would write for a table
        # this freshly loaded within a minute (index-only scans skip the heap once it is set).
        postgres = database.engine.dialect.name == "postgresql"
        async with database.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM (ANALYZE)" if postgres else "ANALYZE"))
    finally:
        await database.dispose()
    print(
        f"  loaded {tables} rate tables, {CHAT_MESSAGES} chat messages, {tasks} tasks with "
        f"history in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return Loaded(task_id=task_id)
