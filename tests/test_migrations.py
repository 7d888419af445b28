"""Migrations: instances that start together on an empty database all come up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from fxdesk.db import Database


async def test_instances_migrating_together_all_succeed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'together.db'}"
    else:
        postgres = request.getfixturevalue("postgres")
        name = postgres.create()
        request.addfinalizer(lambda: postgres.drop(name))
        url = postgres.url(name)
    databases = [Database(url) for _ in range(3)]
    try:
        await asyncio.gather(*(database.migrate() for database in databases))
        async with databases[0].engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            counter = await conn.scalar(text("SELECT value FROM counters WHERE name='event_seq'"))
        assert [v[0] for v in versions] == ["0007"]
        assert counter == 0
    finally:
        for database in databases:
            await database.dispose()
