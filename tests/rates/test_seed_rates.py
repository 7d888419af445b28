"""The seed's currency and rate routes: their paths, payloads and texts over the rates domain."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import pytest

from fxdesk.config import Settings
from fxdesk.events.nats_server import EmbeddedNats
from tests.conftest import DbTemplate
from tests.rates.conftest import FakeCbr, outbox, rates_settings


@pytest.fixture
def settings(tmp_path: Path, loaded_template: DbTemplate, nats_server: EmbeddedNats) -> Settings:
    return rates_settings(tmp_path, loaded_template, nats_server.url)


async def test_currency_codes(fake_cbr: FakeCbr, user_client: Any, client: Any) -> None:
    response = await user_client.get("/currency/get_currency_codes")
    assert response.status_code == 200
    codes = response.json()["currencies"]
    assert codes == sorted(codes) and len(codes) == 55
    assert {"RUB", "USD", "EUR", "JPY", "IRR"} <= set(codes)
    assert (await client.get("/currency/get_currency_codes")).status_code == 401


async def test_convert_message(fake_cbr: FakeCbr, user_client: Any) -> None:
    async def say(amount: Any, source: str, target: str) -> Any:
        return await user_client.post(
            "/currency/convert",
            json={"amount": amount, "currency_code1": source, "currency_code2": target},
        )

    expected = (
        Context(prec=50)
        .divide(Decimal(100) * Decimal("75.5273"), Decimal("88.2826"))
        .quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    )
    usd = await say(100, "USD", "EUR")
    assert usd.status_code == 200
    assert usd.json() == {"message": f"100 of USD is {expected} of EUR"}
    assert (await say("1000", "JPY", "RUB")).json() == {"message": "1000 of JPY is 472.64 of RUB"}
    assert (await say(0.5, "USD", "RUB")).json() == {"message": "0.5 of USD is 37.76 of RUB"}
    yen = (await say(1, "USD", "JPY")).json()["message"]
    assert yen.startswith("1 of USD is ") and "." not in yen.split(" is ")[1].split()[0]
    for amount, source, target in (
        (0, "USD", "EUR"),
        (-1, "USD", "EUR"),
        ("NaN", "USD", "EUR"),
        ("1e999", "USD", "EUR"),
        (True, "USD", "EUR"),
        (100, "XYZ", "EUR"),
        (100, "USD", "EURO"),
        (100, "", "EUR"),
        (100, "usd", "EUR"),
    ):
        refused = await say(amount, source, target)
        assert refused.status_code == 422, (amount, source, target)
    unknown = await say(100, "XYZ", "EUR")
    assert "XYZ" in unknown.json()["detail"]


async def test_rate_listing_and_history(fake_cbr: FakeCbr, user_client: Any) -> None:
    rows = (await user_client.get("/rates/get")).json()
    assert len(rows) == 100
    assert [row["date"] for row in rows[:54]] == ["2026-04-25"] * 54
    jpy = next(row for row in rows if row["code"] == "JPY")
    assert (jpy["value"], jpy["nominal"], jpy["published_value"]) == ("0.472636", 100, "47.2636")
    assert set(jpy) >= {"id", "code", "name", "value", "created_at"} and jpy["manual"] is False
    page = (await user_client.get("/rates/get", params={"limit": 10, "offset": 100})).json()
    assert len(page) == 8 and all(row["date"] == "2026-03-19" for row in page)

    usd = await user_client.get("/rates/get/code", params={"code": "usd"})
    assert usd.status_code == 200
    assert [(r["date"], r["value"]) for r in usd.json()] == [
        ("2026-04-25", "75.5273"),
        ("2026-03-19", "83.1259"),
    ]
    for code in ("XYZ", "US", "U$D", ""):
        missing = await user_client.get("/rates/get/code", params={"code": code})
        assert missing.status_code == 404 and missing.json()["detail"] == "Currency not found"


async def test_manual_rates_over_the_seed_routes(
    app: Any, fake_cbr: FakeCbr, admin_client: Any, user_client: Any
) -> None:
    body = {"code": "BTC", "name": "Bitcoin", "value": 6543210.5}
    assert (await user_client.post("/rates/create", json=body)).status_code == 403
    created = await admin_client.post("/rates/create", json=body)
    assert created.status_code == 200
    rate = created.json()
    assert (rate["code"], rate["name"], rate["value"], rate["manual"]) == (
        "BTC",
        "Bitcoin",
        "6543210.5",
        True,
    )
    listed = (await user_client.get("/rates/get", params={"limit": 2})).json()
    assert listed[0]["id"] == rate["id"] and listed[0]["manual"] is True
    assert listed[1]["manual"] is False
    assert [r["code"] for r in (await user_client.get("/rates/get/code?code=BTC")).json()] == [
        "BTC"
    ]

    update = f"/rates/update?rate_id={rate['id']}"
    assert (await user_client.patch(update, json={"value": 1})).status_code == 403
    updated = await admin_client.patch(update, json={"name": "BTC (manual)"})
    assert updated.status_code == 200 and updated.json()["name"] == "BTC (manual)"
    empty = await admin_client.patch(update, json={})
    assert (empty.status_code, empty.json()["detail"]) == (
        400,
        "You must provide at least one parameter",
    )
    missing = await admin_client.patch("/rates/update?rate_id=999999", json={"value": 2})
    assert (missing.status_code, missing.json()["detail"]) == (404, "Rate not found")

    delete = f"/rates/delete?rate_id={rate['id']}"
    assert (await user_client.delete(delete)).status_code == 403
    deleted = await admin_client.delete(delete)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await admin_client.delete(delete)
    assert (gone.status_code, gone.json()["detail"]) == (404, "Rate not found")

    events = [e for e in await outbox(app) if e.get("manual")]
    assert [e["event"] for e in events] == ["rate_created", "rate_updated", "rate_deleted"]
    assert all({"id", "code", "name", "value", "created_at"} <= set(e) for e in events)


async def test_tasks_run(app: Any, fake_cbr: FakeCbr, admin_client: Any, user_client: Any) -> None:
    assert (await user_client.post("/tasks/run")).status_code == 403
    assert fake_cbr.requests == []
    same = await admin_client.post("/tasks/run")
    assert same.status_code == 200
    assert same.json() == {
        "status": "success",
        "message": "CBR table of 2026-04-25 from cbr: unchanged, 0 rows changed",
    }
    assert isinstance(fake_cbr.daily, bytes)
    fake_cbr.daily = fake_cbr.daily.replace(
        b"<Value>88,2826</Value><VunitRate>88,2826", b"<Value>88,3000</Value><VunitRate>88,3"
    )
    corrected = await admin_client.post("/tasks/run")
    assert corrected.json()["message"].endswith("corrected, 1 rows changed")
    fake_cbr.daily = 503
    failed = await admin_client.post("/tasks/run")
    assert failed.status_code == 503 and "HTTP 503" in failed.json()["detail"]
