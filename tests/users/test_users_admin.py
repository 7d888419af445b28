"""User administration: only admins list users and change roles or the active flag."""

from __future__ import annotations

import pytest

from fxdesk.users.models import Role
from tests.conftest import ClientFactory, UserFactory
from tests.factories import sign_in


@pytest.mark.parametrize(
    ("role", "allowed"), [(Role.user, False), (Role.moderator, False), (Role.admin, True)]
)
async def test_only_admins_manage_users(
    role: Role, allowed: bool, make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    actor = await make_user(role=role)
    target = await make_user()
    client = make_client()
    await sign_in(app, client, actor)
    listing = await client.get("/api/v1/users")
    change = await client.patch(f"/api/v1/users/{target.id}", json={"role": "moderator"})
    if allowed:
        assert listing.status_code == 200
        body = listing.json()
        assert body["total"] >= 2 and {"items", "limit", "offset"} <= set(body)
        assert all("password_hash" not in item for item in body["items"])
        assert change.status_code == 200 and change.json()["role"] == "moderator"
    else:
        assert listing.status_code == 403 and change.status_code == 403
        admin = make_client()
        await sign_in(app, admin, await make_user(role=Role.admin))
        users = (await admin.get("/api/v1/users", params={"limit": 200})).json()["items"]
        assert next(u for u in users if u["id"] == target.id)["role"] == "user"


async def test_unknown_user_and_bad_payloads(client, make_user: UserFactory, app) -> None:
    await sign_in(app, client, await make_user(role=Role.admin))
    assert (await client.patch("/api/v1/users/999999", json={"role": "user"})).status_code == 404
    assert (await client.patch("/api/v1/users/1", json={"role": "emperor"})).status_code == 422
    assert (await client.patch("/api/v1/users/1", json={"extra": 1})).status_code == 422
    assert (await client.patch("/api/v1/users/99999999999999999999999", json={})).status_code == 422
    assert (await client.get("/api/v1/users", params={"limit": 1000})).status_code == 422
