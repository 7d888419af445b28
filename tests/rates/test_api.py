"""Changing rates over /api/v1: manual rates and refresh (admin only), and an empty desk."""

from __future__ import annotations

from typing import Any

from fxdesk.rates.models import FetchLog, ManualRate, Rate
from tests.rates.conftest import (
    CHALLENGE,
    FakeCbr,
    count,
    outbox,
)


async def test_reads_before_any_table_are_503_not_500(fake_cbr: FakeCbr, user_client: Any) -> None:
    latest = await user_client.get("/api/v1/rates/latest")
    assert latest.status_code == 503
    convert = await user_client.get(
        "/api/v1/convert", params={"from": "USD", "to": "RUB", "amount": "1"}
    )
    assert convert.status_code == 503
    currencies = (await user_client.get("/api/v1/currencies")).json()
    assert [c["code"] for c in currencies["currencies"]] == ["RUB"]


async def test_manual_rates_are_admin_only(
    app: Any, fake_cbr: FakeCbr, admin_client: Any, user_client: Any
) -> None:
    body = {"code": "btc", "name": "Bitcoin", "value": "6543210.12"}
    refused = await user_client.post("/api/v1/rates/manual", json=body)
    assert refused.status_code == 403
    created = await admin_client.post("/api/v1/rates/manual", json=body)
    assert created.status_code == 201
    rate = created.json()
    assert (rate["code"], rate["value"], rate["manual"]) == ("BTC", "6543210.12", True)
    rate_id = rate["id"]
    assert (
        await user_client.patch(f"/api/v1/rates/manual/{rate_id}", json={"value": 1})
    ).status_code == 403
    assert (await user_client.delete(f"/api/v1/rates/manual/{rate_id}")).status_code == 403

    patched = await admin_client.patch(f"/api/v1/rates/manual/{rate_id}", json={"value": 7000000})
    assert patched.status_code == 200 and patched.json()["value"] == "7000000"
    same = await admin_client.patch(f"/api/v1/rates/manual/{rate_id}", json={"value": "7000000.00"})
    assert same.status_code == 200  # equal as a Decimal: nothing written, nothing announced
    empty = await admin_client.patch(f"/api/v1/rates/manual/{rate_id}", json={})
    assert empty.status_code == 400
    assert empty.json()["detail"] == "You must provide at least one parameter"
    for bad in ({"value": 0}, {"value": "NaN"}, {"value": "-5"}, {"name": ""}, {"value": True}):
        response = await admin_client.patch(f"/api/v1/rates/manual/{rate_id}", json=bad)
        assert response.status_code == 422, bad
    listed = (await user_client.get("/api/v1/rates/manual")).json()
    assert [r["id"] for r in listed] == [rate_id]
    assert (await admin_client.delete(f"/api/v1/rates/manual/{rate_id}")).status_code == 204
    missing = await admin_client.delete(f"/api/v1/rates/manual/{rate_id}")
    assert missing.status_code == 404 and missing.json()["detail"] == "Rate not found"
    assert await count(app, ManualRate) == 0
    events = [e for e in await outbox(app) if e.get("manual")]
    assert [e["event"] for e in events] == ["rate_created", "rate_updated", "rate_deleted"]
    assert events[1]["value"] == "7000000"


async def test_refresh_is_admin_only_and_runs_the_fetch(
    app: Any, fake_cbr: FakeCbr, admin_client: Any, user_client: Any
) -> None:
    assert (await user_client.post("/api/v1/rates/refresh")).status_code == 403
    assert fake_cbr.requests == []
    done = await admin_client.post("/api/v1/rates/refresh")
    assert done.status_code == 200
    body = done.json()
    assert (body["status"], body["outcome"], body["rows_changed"], body["table_date"]) == (
        "ok",
        "published",
        54,
        "2026-04-25",
    )
    # The fetching instance answers from its refreshed memory at once.
    latest = await user_client.get("/api/v1/rates/latest")
    assert latest.json()["date"] == "2026-04-25"
    status = (await user_client.get("/api/v1/rates/status")).json()
    assert status["latest_date"] == "2026-04-25" and status["autostart"] is False
    assert status["attempts"][0]["outcome"] == "published"
    assert status["attempts"][0]["trigger"] == "manual"


async def test_refresh_when_cbr_and_mirror_fail_is_503(
    app: Any, fake_cbr: FakeCbr, admin_client: Any
) -> None:
    fake_cbr.daily = CHALLENGE
    fake_cbr.mirror = 502
    response = await admin_client.post("/api/v1/rates/refresh")
    assert response.status_code == 503
    assert "HTML" in response.json()["detail"]
    assert await count(app, Rate) == 0
    assert await count(app, FetchLog) == 2
