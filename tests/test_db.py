"""The pool on PostgreSQL: a connection the server ended is replaced before a request uses it.

Reads no longer pre-ping (three round trips per checkout on asyncpg); the checkout check
sees the closed socket instead. Without either, the first statement on such a connection
fails ("connection was closed in the middle of operation") and its request answers 500.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from fxdesk.db import Database
from tests.conftest import DbTemplate
from tests.factories import seconds_until

PID = text("SELECT pg_backend_pid()")


async def _pids(database: Database, count: int, write: bool) -> set[int]:
    """The server processes of `count` sessions open at once (so `count` pooled connections)."""
    gate = asyncio.Event()

    async def one() -> int:
        async with database.session(write=write) as session:
            pid = int(await session.scalar(PID) or 0)
            await gate.wait()
            return pid

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.sleep(0.2)
    gate.set()
    return set(await asyncio.gather(*tasks))


@pytest.mark.parametrize(("pooled", "ended"), [(1, 1), (4, 1), (4, 4)])
@pytest.mark.parametrize("write", [False, True])
async def test_a_connection_the_server_ended_is_replaced(
    pg_template: DbTemplate, tmp_path: Path, pooled: int, ended: int, write: bool
) -> None:
    url = pg_template.fresh(tmp_path)
    database, admin = Database(url, pool_size=pooled, max_overflow=0), Database(url)
    try:
        before = await _pids(database, pooled, write)
        assert len(before) == pooled
        gone = sorted(before)[:ended]
        async with admin.session() as session:
            for pid in gone:
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        async def all_ended() -> bool:
            async with admin.session(write=False) as session:
                rows = await session.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                    {"pids": gone},
                )
                return not rows.all()

        await seconds_until(all_ended, 10, "the terminated backends to exit")
        # every pooled connection is used again, the ended ones first or not: none fails
        after = await _pids(database, pooled, write)
        assert len(after) == pooled
        assert not after & set(gone)
        assert before - set(gone) <= after  # the live ones were kept, not reopened
    finally:
        await database.dispose()
        await admin.dispose()
