"""Health, readiness, metrics, request ids and the error contract."""

from __future__ import annotations

import httpx

from fxdesk.db import Database
from fxdesk.users.models import Role
from tests.conftest import UserFactory
from tests.factories import sign_in


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "nats": "ok", "events": "ok", "relay": "ok"},
    }


async def test_ready_reports_a_broken_database(client: httpx.AsyncClient, app) -> None:
    healthy = app.state.database
    app.state.database = Database("sqlite+aiosqlite:////nonexistent-dir/nope.db")
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "unavailable"
    assert (await client.get("/health")).status_code == 200  # alive, just not ready
    app.state.database = healthy


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, make_user: UserFactory, app
) -> None:
    user = await make_user(role=Role.admin)
    await sign_in(app, client, user)
    await client.get("/api/v1/auth/me")
    await client.patch("/api/v1/users/424242", json={})
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/auth/me",status="200"' in text
    assert 'route="/api/v1/users/{user_id}",status="404"' in text
    assert "fxdesk_http_request_duration_seconds_bucket" in text


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-content-type-options"] == "nosniff"


async def test_errors_are_json_detail(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/route")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    bad_json = await client.post(
        "/api/v1/auth/register",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad_json.status_code == 422
    bad_login = await client.post(
        "/api/v1/auth/login", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert bad_login.status_code == 422
    assert "Traceback" not in bad_login.text
