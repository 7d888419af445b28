"""The login and chat limits hold across instances: their hits live in the shared database."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from fxdesk.app import create_app
from fxdesk.users.models import User
from tests.factories import PASSWORD, add_user, asgi_client, make_settings, sign_in

Apps = tuple[FastAPI, FastAPI]


@pytest.fixture
async def two_instances(tmp_path: Path, db_url: str, nats_url: str) -> AsyncIterator[Apps]:
    """Two instances, each with its own data dir, on one database and one NATS."""
    a = create_app(make_settings(tmp_path / "a", db_url, nats_url=nats_url), migrate=False)
    b = create_app(make_settings(tmp_path / "b", db_url, nats_url=nats_url), migrate=False)
    async with a.router.lifespan_context(a), b.router.lifespan_context(b):
        yield a, b


@pytest.fixture
def make_user_in(password_hash: str) -> object:
    async def factory(app: FastAPI) -> User:
        return await add_user(app, "olga", password_hash=password_hash)

    return factory


async def test_failed_logins_spread_over_instances_trip_the_limit(
    two_instances: Apps, make_user_in: object
) -> None:
    a, b = two_instances
    user = await make_user_in(a)  # type: ignore[operator]
    limit = a.state.settings.login_max_failures_per_account
    async with asgi_client(a) as on_a, asgi_client(b) as on_b:
        for client in itertools.islice(itertools.cycle([on_a, on_b]), limit):
            wrong = await client.post(
                "/api/v1/auth/login", json={"username": user.username, "password": "wrong-guess"}
            )
            assert wrong.status_code == 401
        for client in (on_a, on_b):  # neither instance saw `limit` failures on its own
            limited = await client.post(
                "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
            )
            assert limited.status_code == 429
            assert 0 < int(limited.headers["retry-after"]) <= 900


async def test_a_good_login_on_one_instance_clears_the_count_on_the_other(
    two_instances: Apps, make_user_in: object
) -> None:
    a, b = two_instances
    user = await make_user_in(a)  # type: ignore[operator]
    limit = a.state.settings.login_max_failures_per_account
    async with asgi_client(a) as on_a, asgi_client(b) as on_b:
        for _ in range(limit - 1):
            bad = {"username": user.username, "password": "wrong-guess"}
            assert (await on_a.post("/api/v1/auth/login", json=bad)).status_code == 401
        good = {"username": user.username, "password": PASSWORD}
        assert (await on_b.post("/api/v1/auth/login", json=good)).status_code == 200
        bad = {"username": user.username, "password": "wrong-guess"}
        assert (await on_a.post("/api/v1/auth/login", json=bad)).status_code == 401
        assert (await on_b.post("/api/v1/auth/login", json=good)).status_code == 200


async def test_chat_limit_holds_across_instances(two_instances: Apps, make_user_in: object) -> None:
    a, b = two_instances
    user = await make_user_in(a)  # type: ignore[operator]
    limit = a.state.settings.chat_messages_per_window
    async with asgi_client(a) as on_a, asgi_client(b) as on_b:
        for client, app in ((on_a, a), (on_b, b)):
            await sign_in(app, client, user)
        for n, client in enumerate(itertools.islice(itertools.cycle([on_a, on_b]), limit)):
            sent = await client.post("/api/v1/chat/messages", json={"text": f"line {n}"})
            assert sent.status_code == 201, sent.text
        for client in (on_a, on_b):
            refused = await client.post("/api/v1/chat/messages", json={"text": "one more"})
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
        history = await on_b.get("/api/v1/chat/messages")
        assert len(history.json()["items"]) == limit  # the refused ones were not stored
