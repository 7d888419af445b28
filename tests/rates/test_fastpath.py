"""The hot reads answered before routing: same bytes as the route, same session check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from fxdesk.config import Settings
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.rates import router as rates_router
from fxdesk.rates.cache import RatesCache
from fxdesk.users.models import Role, User
from tests.conftest import ClientFactory, UserFactory, sign_in
from tests.rates.conftest import FakeCbr, rates_settings

CONVERT = "/api/v1/convert?from=USD&to=EUR&amount=1234.56"
LATEST = "/api/v1/rates/latest"


@pytest.fixture
def settings(tmp_path: Path, loaded_template: Path, nats_server: EmbeddedNats) -> Settings:
    """The 2026-03-19 and 2026-04-25 tables stored."""
    return rates_settings(tmp_path, loaded_template, nats_server.url)


@pytest.fixture
def loaded(fake_cbr: FakeCbr) -> FakeCbr:
    return fake_cbr


def _routing_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, a request that reaches the routes' own work fails loudly."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("answered by the route, not the fast path")

    monkeypatch.setattr(rates_router, "conversion_payload", refuse)
    monkeypatch.setattr(RatesCache, "latest", refuse)


@pytest.mark.parametrize("path", [CONVERT, LATEST])
async def test_a_repeated_read_is_answered_before_routing_with_the_same_bytes(
    path: str, loaded: FakeCbr, user_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed = await user_client.get(path)  # computes, encodes and remembers
    assert routed.status_code == 200
    _routing_disabled(monkeypatch)
    fast = await user_client.get(path)
    assert fast.status_code == 200
    assert fast.content == routed.content
    for header in ("etag", "cache-control", "content-type", "x-request-id", "x-frame-options"):
        assert header in fast.headers, header
        if header != "x-request-id":
            assert fast.headers[header] == routed.headers[header], header
    again = await user_client.get(path, headers={"If-None-Match": routed.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_the_fast_path_checks_the_session_like_the_route(
    app: Any,
    loaded: FakeCbr,
    user_client: Any,
    make_client: ClientFactory,
    make_user: UserFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (await user_client.get(CONVERT)).status_code == 200
    assert (await user_client.get(LATEST)).status_code == 200
    user = await make_user(role=Role.user)
    client = make_client()
    sign_in(app, client, user)
    for path in (CONVERT, LATEST):
        assert (await client.get(path)).status_code == 200
        # No session, a forged one: the route answers, with its 401.
        anonymous = await make_client().get(path)
        assert anonymous.status_code == 401
        forged = await make_client().get(path, headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code == 401
    # Revoked sessions die at once on the fast path too (the version is read every time).
    async with app.state.database.session() as session:
        await session.execute(
            update(User).where(User.id == user.id).values(token_version=User.token_version + 1)
        )
    for path in (CONVERT, LATEST):
        assert (await client.get(path)).status_code == 401


async def test_other_questions_go_to_the_route(loaded: FakeCbr, user_client: Any) -> None:
    in_usd = await user_client.get(f"{LATEST}?base=USD")
    assert in_usd.status_code == 200 and in_usd.json()["base"] == "USD"
    assert (await user_client.get(f"{LATEST}?base=usd")).status_code == 422
    for amount in ("1", "2", "3"):
        answer = await user_client.get(f"/api/v1/convert?from=USD&to=RUB&amount={amount}")
        assert answer.json()["amount"] == amount
    bad = await user_client.get("/api/v1/convert?from=USD&to=RUB&amount=-1")
    assert bad.status_code == 422
    again = await user_client.get("/api/v1/convert?from=USD&to=RUB&amount=-1")
    assert again.status_code == 422  # a refusal is never remembered as an answer


async def test_a_new_table_replaces_remembered_answers(
    app: Any, loaded: FakeCbr, user_client: Any
) -> None:
    before = await user_client.get(CONVERT)
    loaded.daily = loaded.daily.replace(  # type: ignore[union-attr]
        b"<Value>75,5273</Value><VunitRate>75,5273", b"<Value>80,0000</Value><VunitRate>80"
    )
    report = await app.state.rates.scheduler.run_once("manual")
    assert report.outcome == "corrected"
    await app.state.rates.cache.reload()
    after = await user_client.get(CONVERT)
    assert after.status_code == 200
    assert after.json()["result"] != before.json()["result"]
    assert after.headers["etag"] != before.headers["etag"]
