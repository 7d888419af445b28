"""fxdesk.sqlite_driver: one trip to the database thread per statement, same results as before."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from fxdesk.db import Database
from fxdesk.users.models import Role, User


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the functions run on aiosqlite's thread, in order."""
    seen: list[str] = []
    original: Any = aiosqlite.core.Connection._execute

    async def counted(
        self: aiosqlite.Connection, fn: object, *args: object, **kw: object
    ) -> object:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kw)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    yield seen


def _user(name: str) -> dict[str, object]:
    return {"username": name, "username_key": name, "password_hash": "x", "role": Role.user}


async def test_a_read_is_one_trip(database: Database, trips: list[str]) -> None:
    async with database.session(write=False) as session:
        await session.execute(text("SELECT 1"))  # the pool's first connection is opened here
    trips.clear()
    async with database.session(write=False) as session:
        assert (await session.execute(text("SELECT 41 + 1"))).scalar_one() == 42
    # was: cursor, execute, fetchall, close, commit, rollback
    assert trips == ["_run"]


async def test_a_write_commits_and_a_failure_rolls_back(
    database: Database, trips: list[str]
) -> None:
    async with database.session() as session:
        await session.execute(insert(User), [_user("ann"), _user("bob")])  # executemany
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            await session.execute(insert(User).values(**_user("cid")))
            await session.execute(insert(User).values(**_user("ann")))  # unique: fails
    async with database.session(write=False) as session:
        names = (await session.scalars(select(User.username).order_by(User.id))).all()
    assert names == ["ann", "bob"]  # cid went with the failed transaction
    assert "commit" in trips and "rollback" in trips  # sent when a transaction was open


async def test_rowcount_lastrowid_and_savepoints(database: Database) -> None:
    async with database.session() as session:
        user = User(username="dee", username_key="dee", password_hash="x", role=Role.user)
        session.add(user)
        await session.flush()
        assert user.id is not None  # the INSERT's lastrowid
        changed = await session.execute(
            update(User).where(User.id == user.id).values(role=Role.admin)
        )
        assert changed.rowcount == 1  # type: ignore[attr-defined]
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.execute(insert(User).values(**_user("dee")))
        # the savepoint's rollback kept the outer transaction and its changes
        assert await session.scalar(select(User.role).where(User.id == user.id)) == Role.admin
    async with database.session(write=False) as session:
        assert await session.scalar(select(User.role).where(User.username == "dee")) == Role.admin
