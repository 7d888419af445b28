"""Input at the edges: no date, time or string reaches a 500, and bad text changes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fxdesk.errors import InvalidInput
from fxdesk.realtime.router import post_chat
from fxdesk.users.models import Role
from tests.conftest import ClientFactory, UserFactory
from tests.factories import signed_in

# At the calendar's edges, with offsets that push them past it in UTC; far outside the years
# fxdesk accepts; naive where a time zone is required.
EDGE_TIMES = [
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1899-12-31T23:59:59Z",
    "2200-12-31T23:59:59-23:59",
    "2026-01-01T00:00:00",
]
EDGE_DATES = ["0001-01-01", "9999-12-31", "1899-12-31", "2201-01-01"]
# NUL and another C0 control, RIGHT-TO-LEFT OVERRIDE, ZERO WIDTH SPACE, a language tag (Cf),
# private use, unassigned.
BAD_CHARACTERS = ["\x00", "\x1b", "\u202e", "\u200b", "\U000e0001", "\ue000", "\u0378"]


def _json(body: object) -> dict[str, Any]:
    """A JSON body sent as bytes, so that httpx does not refuse what a hostile client can send."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


@pytest.mark.parametrize("value", EDGE_TIMES)
async def test_edge_times_are_refused_and_change_nothing(
    value: str, app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    _, client = await signed_in(app, make_client, make_user, Role.admin)
    task = (await client.post("/api/v1/tasks", json={"title": "edge"})).json()

    _refused(await client.get("/api/v1/tasks", params={"updated_since": value}))
    _refused(await client.post("/api/v1/tasks", json={"title": "never", "due_at": value}))
    _refused(
        await client.patch(f"/api/v1/tasks/{task['id']}", json={"due_at": value, "version": 1})
    )
    _refused(
        await client.patch(
            f"/api/v1/tasks/{task['id']}", json={"due_at": value}, headers={"If-Match": '"1"'}
        )
    )
    listed = (await client.get("/api/v1/tasks")).json()
    assert listed["total"] == 1
    assert listed["items"][0]["version"] == 1 and listed["items"][0]["due_at"] is None


async def test_times_inside_the_range_are_stored_in_utc(
    app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    _, client = await signed_in(app, make_client, make_user, Role.admin)
    created = await client.post(
        "/api/v1/tasks", json={"title": "offset", "due_at": "2199-12-31T23:30:00-23:59"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["due_at"].startswith("2200-01-01T23:29:00")
    since = await client.get("/api/v1/tasks", params={"updated_since": "1900-01-02T00:00:00+23:59"})
    assert since.status_code == 200 and since.json()["total"] == 1


@pytest.mark.parametrize("value", EDGE_DATES)
async def test_edge_dates_are_refused(
    value: str, app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    _, client = await signed_in(app, make_client, make_user)
    _refused(await client.get(f"/api/v1/rates/{value}"))
    _refused(await client.get("/api/v1/rates/series", params={"codes": "USD", "end": value}))
    _refused(await client.get("/api/v1/rates/series", params={"codes": "USD", "start": value}))
    _refused(
        await client.get(
            "/api/v1/convert", params={"from": "USD", "to": "EUR", "amount": "1", "date": value}
        )
    )


@pytest.mark.parametrize("bad", BAD_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
async def test_control_and_format_characters_are_refused_everywhere(
    bad: str, app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    user, client = await signed_in(app, make_client, make_user, Role.admin)
    anonymous = make_client()
    text = f"a{bad}b"

    _refused(await client.post("/api/v1/tasks", **_json({"title": text})))
    _refused(await client.post("/api/v1/tasks", **_json({"title": "t1", "description": text})))
    _refused(await client.post("/tasks/create_task", **_json({"title": text})))
    _refused(await client.post("/tasks/create_task", **_json({"title": "t2", "description": text})))
    _refused(await client.post("/api/v1/chat/messages", **_json({"text": text})))
    _refused(await client.get("/api/v1/tasks", params={"q": text}))
    _refused(
        await client.post(
            "/api/v1/rates/manual", **_json({"code": "XAA", "name": text, "value": "1"})
        )
    )
    password = "password-1"
    _refused(
        await anonymous.post(
            "/api/v1/auth/register", **_json({"username": f"abc{bad}", "password": password})
        )
    )
    _refused(
        await anonymous.post(
            "/auth/register", **_json({"username": f"abd{bad}", "password": password})
        )
    )
    _refused(
        await anonymous.post(
            "/api/v1/auth/login", **_json({"username": f"abc{bad}", "password": password})
        )
    )
    _refused(await anonymous.post("/auth/login", data={"username": text, "password": password}))
    # A socket's chat (the main API's `chat` op and the seed's plain text) goes through the same
    # handler, and so through the same check.
    with pytest.raises(InvalidInput, match="control or invisible format"):
        await post_chat(app, user, text)

    assert (await client.get("/api/v1/tasks")).json()["total"] == 0
    assert (await client.get("/api/v1/chat/messages")).json()["items"] == []
    users = (await client.get("/api/v1/users")).json()
    assert [u["username"] for u in users["items"]] == [user.username]


async def test_multiline_text_keeps_newlines_and_tabs(
    app: FastAPI, make_client: ClientFactory, make_user: UserFactory
) -> None:
    user, client = await signed_in(app, make_client, make_user, Role.admin)
    created = await client.post(
        "/api/v1/tasks", json={"title": "lines", "description": "one\r\ntwo\rthree\n\tfour"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "one\ntwo\nthree\n\tfour"
    _refused(await client.post("/api/v1/tasks", json={"title": "a\nb"}))  # a title is one line
    posted = await client.post("/api/v1/chat/messages", json={"text": "hi\r\n\tthere"})
    assert posted.status_code == 201 and posted.json()["text"] == "hi\n\tthere"
    await post_chat(app, user, "from a socket\nsecond line")
    items = (await client.get("/api/v1/chat/messages")).json()["items"]
    assert [m["text"] for m in items] == ["from a socket\nsecond line", "hi\n\tthere"]


async def test_a_name_that_case_folding_lengthens_is_stored(make_client: ClientFactory) -> None:
    """32 sharp s fold to 64 characters: the key column must hold them (PostgreSQL checks)."""
    client = make_client()
    response = await client.post(
        "/api/v1/auth/register", json={"username": "ß" * 32, "password": "password-1"}
    )
    assert response.status_code == 201, response.text
    again = await client.post(
        "/api/v1/auth/register", json={"username": "\u1e9e" * 32, "password": "password-1"}
    )
    assert again.status_code == 409
