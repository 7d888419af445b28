"""Login: Argon2id storage, uniform failures, brute-force limits, a responsive loop."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from fxdesk.users.models import User
from tests.conftest import ClientFactory, UserFactory
from tests.factories import PASSWORD


async def test_registered_password_is_stored_as_argon2id(client: httpx.AsyncClient, app) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"username": "Alice", "password": "alice-password"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "Alice" and body["role"] == "user"
    assert "password" not in response.text and "$argon2" not in response.text
    async with app.state.database.session() as session:
        stored = await session.scalar(select(User.password_hash).where(User.id == body["id"]))
    assert stored is not None and stored.startswith("$argon2id$")


async def test_username_is_unique_regardless_of_case(client: httpx.AsyncClient) -> None:
    first = await client.post(
        "/api/v1/auth/register", json={"username": "Boris", "password": "boris-password"}
    )
    assert first.status_code == 201
    second = await client.post(
        "/api/v1/auth/register", json={"username": "bORIS", "password": "boris-password"}
    )
    assert second.status_code == 409
    assert second.json() == {"detail": "User with such name already exists"}


async def test_unknown_user_and_wrong_password_answer_the_same(
    make_client: ClientFactory, make_user: UserFactory
) -> None:
    user = await make_user()
    wrong_password = await make_client().post(
        "/api/v1/auth/login", json={"username": user.username, "password": "wrong-password"}
    )
    unknown_user = await make_client().post(
        "/api/v1/auth/login", json={"username": "nobody-here", "password": "wrong-password"}
    )
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert (
        wrong_password.json() == unknown_user.json() == {"detail": "Invalid username or password"}
    )
    assert "set-cookie" not in wrong_password.headers


async def test_failed_logins_are_limited_per_account(
    client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    user = await make_user()
    limit = app.state.settings.login_max_failures_per_account
    for _ in range(limit):
        response = await client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": "wrong-guess"}
        )
        assert response.status_code == 401
    limited = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    # the seed login shares the limit
    seed = await client.post("/auth/login", data={"username": user.username, "password": PASSWORD})
    assert seed.status_code == 429


async def test_failed_logins_are_limited_per_address(
    client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    app.state.accounts.limiter.addresses.limit = 3
    user = await make_user()
    for name in ("guess-a", "guess-b", "guess-c"):
        response = await client.post(
            "/api/v1/auth/login", json={"username": name, "password": "wrong-guess"}
        )
        assert response.status_code == 401
    limited = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert limited.status_code == 429
    assert "retry-after" in limited.headers


async def test_health_answers_while_logins_are_hashing(
    make_client: ClientFactory, make_user: UserFactory
) -> None:
    user = await make_user()
    logins = [
        asyncio.create_task(
            make_client().post(
                "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
            )
        )
        for _ in range(4)
    ]
    await asyncio.sleep(0.02)  # let every login reach its hash
    health = await make_client().get("/health")
    assert health.status_code == 200
    pending_when_health_answered = sum(not task.done() for task in logins)
    results = await asyncio.gather(*logins)
    assert all(r.status_code == 200 for r in results)
    assert pending_when_health_answered >= 2


async def test_validation_errors_never_echo_the_password(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"username": "x", "password": "secret-password-123"}
    )
    assert response.status_code == 422
    assert "secret-password-123" not in response.text
