"""The seed's /auth/register and /auth/login answer exactly as PRODUCT.md 3.2 says."""

from __future__ import annotations

from datetime import datetime

import httpx

from tests.conftest import ClientFactory


async def test_seed_register_returns_username_and_date_only(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        json={"username": "seeduser", "password": "password-1", "confirm_password": "password-1"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"username", "register_date"}
    assert body["username"] == "seeduser"
    assert datetime.fromisoformat(body["register_date"]).tzinfo is not None


async def test_seed_register_without_confirm_password(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"username": "readmeuser", "password": "password-1"}
    )
    assert response.status_code == 200


async def test_seed_register_error_texts(client: httpx.AsyncClient) -> None:
    short = await client.post("/auth/register", json={"username": "u1abc", "password": "short"})
    assert short.status_code == 422
    assert short.json() == {"detail": "Length must be between 8 and 64"}
    long = await client.post("/auth/register", json={"username": "u1abc", "password": "x" * 65})
    assert long.json() == {"detail": "Length must be between 8 and 64"}

    mismatch = await client.post(
        "/auth/register",
        json={"username": "u2abc", "password": "password-1", "confirm_password": "password-2"},
    )
    assert mismatch.status_code == 422
    assert mismatch.json() == {"detail": "Passwords do not match"}

    await client.post("/auth/register", json={"username": "taken", "password": "password-1"})
    duplicate = await client.post(
        "/auth/register", json={"username": "TAKEN", "password": "password-1"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "User with such name already exists"}


async def test_seed_login_sets_cookie_and_message(make_client: ClientFactory) -> None:
    client = make_client()
    await client.post("/auth/register", json={"username": "loginuser", "password": "password-1"})
    response = await client.post(
        "/auth/login", data={"username": "loginuser", "password": "password-1"}
    )
    assert response.status_code == 200
    assert response.json() == {"message": "Logged in successfully"}
    assert "session_token=" in response.headers["set-cookie"]
    me = await client.get("/api/v1/auth/me")
    assert me.json()["username"] == "loginuser"

    wrong = await make_client().post(
        "/auth/login", data={"username": "loginuser", "password": "password-x"}
    )
    unknown = await make_client().post(
        "/auth/login", data={"username": "ghost", "password": "password-x"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Invalid username or password"}


async def test_seed_login_requires_the_form_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login", data={"username": "someone"})
    assert response.status_code == 422
