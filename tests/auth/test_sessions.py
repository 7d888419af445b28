"""Session security: cookie flags, token validation, revocation, live roles, CSRF."""

from __future__ import annotations

import base64
import json
import time
from http.cookies import SimpleCookie
from typing import Any

import httpx
import jwt
import pytest

from fxdesk.users.models import Role
from tests.conftest import ClientFactory, UserFactory
from tests.factories import (
    ALLOWED_ORIGIN,
    PASSWORD,
    TEST_SECRET,
    asgi_client,
    bearer,
    issue_token,
    login,
    make_settings,
    sign_in,
)


def _set_cookie_attributes(response: httpx.Response) -> dict[str, str | bool]:
    header = response.headers["set-cookie"]
    cookie = SimpleCookie()
    cookie.load(header)
    morsel = cookie["session_token"]
    flags = {part.strip().lower() for part in header.split(";")}
    return {
        "value": morsel.value,
        "httponly": "httponly" in flags,
        "secure": "secure" in flags,
        "samesite": str(morsel["samesite"]).lower(),
        "path": morsel["path"],
        "max-age": str(morsel["max-age"]),
    }


async def test_login_cookie_has_secure_flags(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    response = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200
    attributes = _set_cookie_attributes(response)
    assert attributes["httponly"] is True
    assert attributes["secure"] is True
    assert attributes["samesite"] == "lax"
    assert attributes["path"] == "/"
    assert attributes["max-age"] == "86400"
    token = attributes["value"]
    assert isinstance(token, str)
    assert token not in response.text  # the token never travels in a body
    body = response.json()
    assert body["user"]["username"] == user.username
    assert "password_hash" not in response.text


async def test_form_login_works_too(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    user = await make_user()
    response = await client.post(
        "/api/v1/auth/login", data={"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert (await client.get("/api/v1/auth/me")).json()["id"] == user.id


async def test_cookie_secure_flag_can_be_disabled_for_local_http(
    tmp_path, db_url: str, make_user: UserFactory
) -> None:
    from fxdesk.app import create_app

    app = create_app(make_settings(tmp_path, db_url, cookie_secure=False), migrate=False)
    async with (
        app.router.lifespan_context(app),
        asgi_client(app, base_url="http://localhost") as plain,
    ):
        await plain.post(
            "/auth/register", json={"username": "plainuser", "password": "password-123"}
        )
        response = await plain.post(
            "/auth/login", data={"username": "plainuser", "password": "password-123"}
        )
        assert response.status_code == 200
        assert _set_cookie_attributes(response)["secure"] is False


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(user_id: int, sid: str | None, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(user_id),
        "sid": sid,
        "role": "admin",
        "ver": 0,
        "iat": now,
        "exp": now + 3600,
        "aud": "fxdesk",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "wrong_key",
        "wrong_audience",
        "no_exp",
        "expired",
        "garbage",
        "hs512",
        "no_session",
        "unknown_session",
        "session_of_another_user",
    ],
)
async def test_bad_tokens_get_401(
    case: str, client: httpx.AsyncClient, make_user: UserFactory, app: Any
) -> None:
    user = await make_user(role=Role.admin)
    # a live session of this user: the control token below names it
    sid = jwt.decode(await issue_token(app, user), options={"verify_signature": False})["sid"]
    if case == "alg_none":
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user.id, sid))}."
    elif case == "wrong_key":
        token = jwt.encode(_claims(user.id, sid), "another-secret-" * 4, algorithm="HS256")
    elif case == "wrong_audience":
        token = jwt.encode(
            _claims(user.id, sid, aud="someone-else"), TEST_SECRET, algorithm="HS256"
        )
    elif case == "no_exp":
        token = jwt.encode(_claims(user.id, sid, exp=None), TEST_SECRET, algorithm="HS256")
    elif case == "expired":
        past = int(time.time()) - 10
        token = jwt.encode(
            _claims(user.id, sid, iat=past - 100, exp=past), TEST_SECRET, algorithm="HS256"
        )
    elif case == "hs512":
        token = jwt.encode(_claims(user.id, sid), TEST_SECRET, algorithm="HS512")
    elif case == "no_session":
        token = jwt.encode(_claims(user.id, None), TEST_SECRET, algorithm="HS256")
    elif case == "unknown_session":
        token = jwt.encode(_claims(user.id, "f" * 32), TEST_SECRET, algorithm="HS256")
    elif case == "session_of_another_user":
        other = await make_user(role=Role.user)
        other_sid = jwt.decode(await issue_token(app, other), options={"verify_signature": False})
        token = jwt.encode(_claims(user.id, other_sid["sid"]), TEST_SECRET, algorithm="HS256")
    else:
        token = "not.a.token"
    # the control: the same claims, properly signed, are accepted
    good = jwt.encode(_claims(user.id, sid), TEST_SECRET, algorithm="HS256")
    ok = await client.get("/api/v1/auth/me", headers=bearer(good))
    assert ok.status_code == 200

    by_header = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert by_header.status_code == 401
    client.cookies.set("session_token", token)
    by_cookie = await client.get("/api/v1/users")
    assert by_cookie.status_code == 401
    assert by_cookie.json() == {"detail": "Invalid or expired session"}


async def test_logout_all_revokes_old_tokens(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    user = await make_user()
    laptop, phone = make_client(), make_client()
    await login(laptop, user.username)
    await sign_in(app, phone, user)
    assert (await phone.get("/api/v1/auth/me")).status_code == 200
    response = await laptop.post("/api/v1/auth/logout-all")
    assert response.status_code == 200
    assert (await phone.get("/api/v1/auth/me")).status_code == 401
    assert (await laptop.get("/api/v1/auth/me")).status_code == 401


async def test_password_change_revokes_other_sessions_and_renews_this_one(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    user = await make_user()
    this, other = make_client(), make_client()
    await login(this, user.username)
    await sign_in(app, other, user)
    wrong = await this.post(
        "/api/v1/auth/password",
        json={"current_password": "not-the-password", "new_password": "brand-new-pass"},
    )
    assert wrong.status_code == 400
    assert (await other.get("/api/v1/auth/me")).status_code == 200  # nothing changed

    changed = await this.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "brand-new-pass"},
    )
    assert changed.status_code == 200
    assert (await other.get("/api/v1/auth/me")).status_code == 401
    assert (await this.get("/api/v1/auth/me")).status_code == 200
    fresh = make_client()
    await login(fresh, user.username, "brand-new-pass")


async def test_deactivation_revokes_sessions(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    admin = await make_user(role=Role.admin)
    user = await make_user()
    admin_client, user_client = make_client(), make_client()
    await sign_in(app, admin_client, admin)
    await sign_in(app, user_client, user)
    assert (await user_client.get("/api/v1/auth/me")).status_code == 200
    response = await admin_client.patch(f"/api/v1/users/{user.id}", json={"is_active": False})
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert (await user_client.get("/api/v1/auth/me")).status_code == 401
    # and the deactivated user cannot log in again
    again = await make_client().post(
        "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert again.status_code == 401


async def test_demoted_admin_is_refused_at_once(
    make_client: ClientFactory, make_user: UserFactory, app
) -> None:
    boss = await make_user(role=Role.admin)
    other_admin = await make_user(role=Role.admin)
    boss_client, other_client = make_client(), make_client()
    await sign_in(app, boss_client, boss)
    await sign_in(app, other_client, other_admin)
    assert (await other_client.get("/api/v1/users")).status_code == 200
    demote = await boss_client.patch(f"/api/v1/users/{other_admin.id}", json={"role": "user"})
    assert demote.status_code == 200
    # same cookie, whose token still says "admin": the database role wins
    refused = await other_client.get("/api/v1/users")
    assert refused.status_code == 403
    assert (await other_client.get("/api/v1/auth/me")).json()["role"] == "user"


async def test_admin_cannot_lock_themselves_out(
    client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    admin = await make_user(role=Role.admin)
    await sign_in(app, client, admin)
    response = await client.patch(f"/api/v1/users/{admin.id}", json={"role": "user"})
    assert response.status_code == 400
    assert (await client.get("/api/v1/auth/me")).json()["role"] == "admin"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": ALLOWED_ORIGIN}, 200),
        ({"Origin": "https://testserver"}, 403),  # the Host header is not an origin
        ({}, 200),  # not a browser: nothing to forge
    ],
)
async def test_csrf_origin_check_on_cookie_writes(
    headers: dict[str, str],
    expected: int,
    client: httpx.AsyncClient,
    make_user: UserFactory,
    app,
) -> None:
    user = await make_user()
    await sign_in(app, client, user)
    response = await client.post("/api/v1/auth/logout-all", headers=headers)
    assert response.status_code == expected
    still_valid = (await client.get("/api/v1/auth/me")).status_code == 200
    assert still_valid is (expected == 403)  # a refused request changed nothing


async def test_bearer_requests_are_not_subject_to_the_origin_check(
    client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    user = await make_user()
    token = await issue_token(app, user)
    response = await client.post(
        "/api/v1/auth/logout-all",
        headers={**bearer(token), "Origin": "https://evil.example"},
    )
    assert response.status_code == 200
