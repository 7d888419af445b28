"""Seed routes with no body, an empty or `null` body, a wrong content type, a missing or
non-integer query parameter: the seed's 4xx with its message, never a 500, nothing changed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fxdesk.users.models import Role
from tests.conftest import ClientFactory, UserFactory
from tests.factories import signed_in

NO_CHANGE = {"detail": "You must provide at least one parameter"}
JSON = {"content-type": "application/json"}
# Ways a client sends "nothing to change": as the seed's own client does (no body at all), an
# empty body, JSON null, an empty object.
NOTHING = {
    "no body": {},
    "empty body": {"content": b"", "headers": JSON},
    "null": {"content": b"null", "headers": JSON},
    "empty object": {"json": {}},
}
MALFORMED = {
    "wrong content type": {"content": b'{"title": "x"}', "headers": {"content-type": "text/plain"}},
    "broken JSON": {"content": b'{"title"', "headers": JSON},
    "a list": {"json": [1]},
    "a string": {"json": "title"},
}


async def _task(client: httpx.AsyncClient) -> dict[str, Any]:
    created = await client.post("/tasks/create_task", json={"title": "kept", "description": "d"})
    assert created.status_code == 200, created.text
    body: dict[str, Any] = created.json()
    return body


async def _manual_rate(client: httpx.AsyncClient) -> dict[str, Any]:
    created = await client.post("/rates/create", json={"code": "XAA", "name": "A", "value": "2"})
    assert created.status_code == 200, created.text
    body: dict[str, Any] = created.json()
    return body


@pytest.mark.parametrize("body", NOTHING.values(), ids=NOTHING.keys())
async def test_update_with_nothing_to_change_gets_the_seeds_400(
    body: dict[str, Any], app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    _, client = await signed_in(app, make_client, make_user, Role.admin)
    task = await _task(client)
    rate = await _manual_rate(client)

    response = await client.request("PUT", f"/tasks/update_task?id={task['id']}", **body)
    assert (response.status_code, response.json()) == (400, NO_CHANGE)
    response = await client.request("PATCH", f"/rates/update?rate_id={rate['id']}", **body)
    assert (response.status_code, response.json()) == (400, NO_CHANGE)

    history = await client.get(f"/api/v1/tasks/{task['id']}/history")
    assert [entry["action"] for entry in history.json()] == ["created"]
    rows = (await client.get("/rates/get/code", params={"code": "XAA"})).json()
    assert [(row["name"], row["value"]) for row in rows] == [("A", "2")]


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_bodies_get_a_clear_422_on_every_seed_write(
    body: dict[str, Any], app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    _, client = await signed_in(app, make_client, make_user, Role.admin)
    task = await _task(client)
    rate = await _manual_rate(client)
    anonymous = make_client()
    for method, url, caller in (
        ("POST", "/auth/register", anonymous),
        ("POST", "/auth/login", anonymous),
        ("POST", "/tasks/create_task", client),
        ("PUT", f"/tasks/update_task?id={task['id']}", client),
        ("POST", "/rates/create", client),
        ("PATCH", f"/rates/update?rate_id={rate['id']}", client),
        ("POST", "/currency/convert", client),
    ):
        response = await caller.request(method, url, **body)
        assert response.status_code in (400, 422), (url, response.text)
        assert response.json()["detail"], url
    assert (await client.get("/api/v1/tasks")).json()["total"] == 1


@pytest.mark.parametrize("body", [*NOTHING.values(), *MALFORMED.values()])
async def test_seed_bodies_required_get_422_not_500(
    body: dict[str, Any], app: FastAPI, make_client: ClientFactory
) -> None:
    anonymous = make_client()
    for url in ("/auth/register", "/auth/login"):
        response = await anonymous.post(url, **body)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["detail"]


@pytest.mark.parametrize(
    "query", ["", "?id=", "?id=abc", "?id=1.5", "?id=0", "?id=99999999999999999999"]
)
async def test_task_routes_with_a_missing_or_bad_id(
    query: str, app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    _, client = await signed_in(app, make_client, make_user, Role.admin)
    await _task(client)
    for method, path in (
        ("PUT", "/tasks/update_task"),
        ("PUT", "/tasks/finish_task"),
        ("DELETE", "/tasks/delete_task"),
    ):
        kwargs: dict[str, Any] = (
            {"json": {"title": "changed"}} if path.endswith("update_task") else {}
        )
        response = await client.request(method, path + query, **kwargs)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"]
    kept = (await client.get("/api/v1/tasks")).json()["items"][0]
    assert kept["title"] == "kept" and kept["status"] == "open" and kept["deleted_at"] is None


@pytest.mark.parametrize("query", ["", "?rate_id=", "?rate_id=x", "?rate_id=-1"])
async def test_rate_routes_with_a_missing_or_bad_id(
    query: str, app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    _, client = await signed_in(app, make_client, make_user, Role.admin)
    await _manual_rate(client)
    for method, path in (("PATCH", "/rates/update"), ("DELETE", "/rates/delete")):
        kwargs: dict[str, Any] = {"json": {"name": "B"}} if method == "PATCH" else {}
        response = await client.request(method, path + query, **kwargs)
        assert response.status_code == 422, (path, response.text)
    rows = (await client.get("/rates/get/code", params={"code": "XAA"})).json()
    assert [row["name"] for row in rows] == ["A"]
    for query_string in ("?code=", "", "?limit=x", "?limit=0"):
        response = await client.get("/rates/get/code" + query_string)
        assert response.status_code in (404, 422), response.text
