"""Usernames are unique by their Unicode confusable skeleton, case-insensitively, after NFKC."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from fxdesk.db import Database, alembic_config
from tests.conftest import ClientFactory
from tests.factories import PASSWORD, login

CYRILLIC_A = "\u0430"
FULL_WIDTH_ADMIN = "\uff41\uff44\uff4d\uff49\uff4e"
LOOK_ALIKES = [f"{CYRILLIC_A}dmin", "ADMIN", "Admin", FULL_WIDTH_ADMIN, "adrnin", "\u0251dmin"]


@pytest.mark.parametrize("look_alike", LOOK_ALIKES, ids=ascii)
async def test_a_look_alike_of_a_taken_name_is_refused_both_ways(
    look_alike: str, make_client: ClientFactory
) -> None:
    client = make_client()
    for first, second in (("admin", look_alike), (f"{look_alike}2", "admin2")):
        created = await client.post(
            "/api/v1/auth/register", json={"username": first, "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        for route in ("/api/v1/auth/register", "/auth/register"):
            taken = await client.post(route, json={"username": second, "password": PASSWORD})
            assert taken.status_code == 409, (route, taken.text)
            assert taken.json() == {"detail": "User with such name already exists"}


async def test_login_by_name_works_as_before(make_client: ClientFactory) -> None:
    client = make_client()
    await client.post("/api/v1/auth/register", json={"username": "Olga", "password": PASSWORD})
    await login(make_client(), "olga")
    await login(make_client(), "OLGA")
    refused = await make_client().post(
        "/api/v1/auth/login", json={"username": f"olg{CYRILLIC_A}", "password": PASSWORD}
    )
    assert refused.status_code == 401  # a look-alike is not the account's name


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_migration_keeps_existing_look_alikes_working(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, password_hash: str
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    else:
        postgres = request.getfixturevalue("postgres")
        name = postgres.create()
        request.addfinalizer(lambda: postgres.drop(name))
        url = postgres.url(name)
    database = Database(url)
    try:
        async with database.write_engine.begin() as conn:
            await conn.run_sync(_upgrade, "0006")
            for username in ("admin", f"{CYRILLIC_A}dmin", "bob"):
                await conn.execute(
                    text(
                        "INSERT INTO users (username, username_key, password_hash, role, "
                        "is_active, token_version, created_at, updated_at) VALUES (:u, :k, :h, "
                        "'user', true, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"u": username, "k": username.casefold(), "h": password_hash},
                )
        await database.migrate()
        async with database.engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT id, username_skeleton FROM users ORDER BY id"))
            ).all()
        assert [row[1] for row in rows] == ["adrnin", f"adrnin#{rows[1][0]}", "bob"]
    finally:
        await database.dispose()
