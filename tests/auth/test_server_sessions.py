"""Server-side sessions: logout really ends a session, and so do logout-all, a password change
and deactivation; a user lists and ends their own sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from fxdesk.users.models import Role
from tests.conftest import ClientFactory, UserFactory
from tests.factories import PASSWORD, bearer, issue_token, login


async def me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/api/v1/auth/me", headers=bearer(token))).status_code


async def test_logout_ends_the_session_for_good(
    make_client: ClientFactory, make_user: UserFactory
) -> None:
    user = await make_user()
    browser = make_client()
    await login(browser, user.username)
    token = browser.cookies["session_token"]
    assert await me(browser, token) == 200

    response = await browser.post("/api/v1/auth/logout")
    assert response.status_code == 200
    assert "session_token" not in browser.cookies

    # the token a thief copied before the logout: refused as a Bearer and as a cookie
    other = make_client()
    assert await me(other, token) == 401
    other.cookies.set("session_token", token)
    assert (await other.get("/api/v1/auth/me")).status_code == 401
    # and a second logout with it changes nothing and still answers 200
    assert (await other.post("/api/v1/auth/logout")).status_code == 200


async def test_logout_by_bearer_ends_only_that_session(
    client: httpx.AsyncClient, make_user: UserFactory, app: Any
) -> None:
    user = await make_user()
    laptop, phone = await issue_token(app, user), await issue_token(app, user)
    response = await client.post("/api/v1/auth/logout", headers=bearer(laptop))
    assert response.status_code == 200
    assert await me(client, laptop) == 401
    assert await me(client, phone) == 200


async def test_logout_all_ends_every_session(
    client: httpx.AsyncClient, make_user: UserFactory, app: Any
) -> None:
    user = await make_user()
    tokens = [await issue_token(app, user) for _ in range(3)]
    assert (await client.post("/api/v1/auth/logout-all", headers=bearer(tokens[0]))).is_success
    assert [await me(client, token) for token in tokens] == [401, 401, 401]


async def test_password_change_ends_the_other_sessions_and_keeps_this_one(
    client: httpx.AsyncClient, make_user: UserFactory, app: Any
) -> None:
    user = await make_user()
    here, elsewhere = await issue_token(app, user), await issue_token(app, user)
    response = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a-new-password-1"},
        headers=bearer(here),
    )
    assert response.status_code == 200, response.text
    assert await me(client, here) == 200
    assert await me(client, elsewhere) == 401


async def test_deactivation_ends_every_session(
    client: httpx.AsyncClient, make_user: UserFactory, app: Any
) -> None:
    admin = await make_user(role=Role.admin)
    user = await make_user()
    token = await issue_token(app, user)
    response = await client.patch(
        f"/api/v1/users/{user.id}",
        json={"is_active": False},
        headers=bearer(await issue_token(app, admin)),
    )
    assert response.status_code == 200
    assert await me(client, token) == 401
    # reactivated, the old session stays ended: its owner logs in again
    response = await client.patch(
        f"/api/v1/users/{user.id}",
        json={"is_active": True},
        headers=bearer(await issue_token(app, admin)),
    )
    assert response.status_code == 200
    assert await me(client, token) == 401


async def test_sessions_are_listed_and_ended_one_by_one(
    make_client: ClientFactory, make_user: UserFactory, app: Any
) -> None:
    user = await make_user()
    stranger = await make_user()
    phone = make_client(headers={"User-Agent": "PhoneBrowser/1.0"})
    await login(phone, user.username)
    laptop = make_client(headers={"User-Agent": "LaptopBrowser/2.0"})
    await login(laptop, user.username)
    theirs = await issue_token(app, stranger)

    listed = await laptop.get("/api/v1/auth/sessions")
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [item["user_agent"] for item in items] == ["LaptopBrowser/2.0", "PhoneBrowser/1.0"]
    assert [item["current"] for item in items] == [True, False]
    assert all(item["address"] == "127.0.0.1" for item in items)
    assert set(items[0]) == {
        "id",
        "created_at",
        "last_seen_at",
        "expires_at",
        "user_agent",
        "address",
        "current",
    }
    body = listed.text
    assert laptop.cookies["session_token"] not in body and "$argon2" not in body

    # someone else's session, or one that does not exist: 404, and it goes on working
    stranger_sid = await make_client().get("/api/v1/auth/sessions", headers=bearer(theirs))
    their_id = stranger_sid.json()["items"][0]["id"]
    assert (await laptop.delete(f"/api/v1/auth/sessions/{their_id}")).status_code == 404
    assert (await laptop.delete("/api/v1/auth/sessions/nope")).status_code == 404
    assert await me(laptop, theirs) == 200

    ended = await laptop.delete(f"/api/v1/auth/sessions/{items[1]['id']}")
    assert ended.status_code == 200
    assert (await phone.get("/api/v1/auth/me")).status_code == 401
    assert (await laptop.get("/api/v1/auth/me")).status_code == 200
    # ended once: a second time it is gone
    assert (await laptop.delete(f"/api/v1/auth/sessions/{items[1]['id']}")).status_code == 404
    after = (await laptop.get("/api/v1/auth/sessions")).json()["items"]
    assert [item["id"] for item in after] == [items[0]["id"]]


async def test_last_seen_is_saved(
    client: httpx.AsyncClient, make_user: UserFactory, app: Any
) -> None:
    user = await make_user()
    token = await issue_token(app, user)
    before = (await client.get("/api/v1/auth/sessions", headers=bearer(token))).json()["items"]
    lookup = app.state.user_lookup
    lookup._seen.clear()  # as if its last request were more than a minute ago
    assert await me(client, token) == 200
    await lookup.save_seen()
    after = (await client.get("/api/v1/auth/sessions", headers=bearer(token))).json()["items"]
    seen = [datetime.fromisoformat(items[0]["last_seen_at"]) for items in (before, after)]
    assert seen[1] > seen[0]
