"""Migrations: instances that start together on an empty database all come up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from fxdesk.db import Database, alembic_config


@pytest.mark.parametrize("round_", range(4))  # a race: several rounds, more instances
async def test_instances_migrating_together_all_succeed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, round_: int
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'together.db'}"
    else:
        postgres = request.getfixturevalue("postgres")
        name = postgres.create()
        request.addfinalizer(lambda: postgres.drop(name))
        url = postgres.url(name)
    databases = [Database(url) for _ in range(3 + round_)]
    try:
        await asyncio.gather(*(database.migrate() for database in databases))
        async with databases[0].engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            counter = await conn.scalar(text("SELECT value FROM counters WHERE name='event_seq'"))
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert [v[0] for v in versions] == [head]
        assert counter == 0
    finally:
        for database in databases:
            await database.dispose()
