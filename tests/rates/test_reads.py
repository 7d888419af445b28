"""Reading rates over /api/v1: latest, as-of, series, currencies, convert, ETags, APILayer,
and the hot reads answered before routing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from fxdesk.config import Settings
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.rates import cache, conversions
from fxdesk.users.lookup import MAX_AGE_SECONDS
from fxdesk.users.models import Role, User
from tests.conftest import ClientFactory, DbTemplate, UserFactory
from tests.factories import sign_in
from tests.rates.conftest import (
    FakeCbr,
    moscow_noon,
    rates_settings,
)


@pytest.fixture
def settings(tmp_path: Path, loaded_template: DbTemplate, nats_server: EmbeddedNats) -> Settings:
    """Every test here starts with the 2026-03-19 and 2026-04-25 tables stored."""
    return rates_settings(tmp_path, loaded_template, nats_server.url)


@pytest.fixture
def loaded(fake_cbr: FakeCbr) -> FakeCbr:
    return fake_cbr


def row_of(table: dict[str, Any], code: str) -> dict[str, Any]:
    return next(row for row in table["rates"] if row["code"] == code)


async def test_latest_is_the_table_in_force_today(loaded: FakeCbr, user_client: Any) -> None:
    response = await user_client.get("/api/v1/rates/latest")
    assert response.status_code == 200
    body = response.json()
    assert (body["date"], body["today"], body["previous_date"]) == (
        "2026-04-25",
        "2026-11-23",
        "2026-03-19",
    )
    assert body["base"] == "RUB" and body["next"] is None and body["count"] == 54
    jpy = row_of(body, "JPY")
    assert (jpy["nominal"], jpy["value"], jpy["rate"]) == (100, "47.2636", "0.472636")
    assert jpy["previous_rate"] == "0.52241"
    assert row_of(body, "IRR")["rate"] == "0.0000539256"
    assert row_of(body, "BYN")["value"] == "26.7960"  # as published, trailing zero kept
    for row in body["rates"]:
        assert isinstance(row["value"], str) and isinstance(row["rate"], str)
    assert response.headers["etag"].startswith('"')


async def test_latest_shows_tomorrows_table_as_next(
    app: Any, loaded: FakeCbr, user_client: Any
) -> None:
    app.state.rates.clock = lambda: moscow_noon(dt.date(2026, 4, 24))
    body = (await user_client.get("/api/v1/rates/latest")).json()
    assert (body["date"], body["today"]) == ("2026-03-19", "2026-04-24")
    assert body["next"]["date"] == "2026-04-25"
    assert row_of(body["next"], "USD")["previous_rate"] == "83.1259"


@pytest.mark.parametrize(
    "path", ["/api/v1/rates/latest", "/api/v1/convert?from=USD&to=RUB&amount=1"]
)
async def test_a_remembered_answer_ends_with_its_day(
    app: Any, loaded: FakeCbr, user_client: Any, path: str
) -> None:
    """The same query string, asked again after midnight in Moscow with no new table stored,
    is answered with the table in force on the new day, not the one remembered the day before."""
    app.state.rates.clock = lambda: moscow_noon(dt.date(2026, 4, 24))
    before = (await user_client.get(path)).json()
    assert before["date"] == "2026-03-19"
    assert (await user_client.get(path)).json() == before
    app.state.rates.clock = lambda: moscow_noon(dt.date(2026, 4, 25))
    after = (await user_client.get(path)).json()
    assert after["date"] == "2026-04-25"


@pytest.mark.parametrize(
    ("path", "module", "computation"),
    [
        ("/api/v1/rates/latest", cache, "table_payload"),
        ("/api/v1/convert?from=USD&to=RUB&amount=1", conversions, "convert"),
    ],
)
async def test_an_answer_computed_across_midnight_is_not_kept_for_the_new_day(
    app: Any,
    loaded: FakeCbr,
    user_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    module: Any,
    computation: str,
) -> None:
    """Midnight in Moscow passes while the answer is being computed with the old day's
    table: the next request, on the new day, gets the new day's table."""
    app.state.rates.clock = lambda: moscow_noon(dt.date(2026, 4, 24))
    original = getattr(module, computation)

    def then_midnight(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        app.state.rates.clock = lambda: moscow_noon(dt.date(2026, 4, 25))
        return result

    monkeypatch.setattr(module, computation, then_midnight)
    assert (await user_client.get(path)).json()["date"] == "2026-03-19"
    monkeypatch.setattr(module, computation, original)
    assert (await user_client.get(path)).json()["date"] == "2026-04-25"


async def test_latest_in_another_base(loaded: FakeCbr, user_client: Any) -> None:
    lower = await user_client.get("/api/v1/rates/latest", params={"base": "usd"})
    assert lower.status_code == 422 and "'USD'" in lower.json()["detail"]
    body = (await user_client.get("/api/v1/rates/latest", params={"base": "USD"})).json()
    assert body["base"] == "USD"
    codes = [row["code"] for row in body["rates"]]
    assert "USD" not in codes and "RUB" in codes and codes == sorted(codes)
    exact = Context(prec=50).divide(Decimal("88.2826"), Decimal("75.5273"))
    assert Decimal(row_of(body, "EUR")["rate"]) == Context(prec=10).plus(exact)
    assert Decimal(row_of(body, "RUB")["rate"]) == Context(prec=10).plus(
        Context(prec=50).divide(1, Decimal("75.5273"))
    )
    unknown = await user_client.get("/api/v1/rates/latest", params={"base": "XYZ"})
    assert unknown.status_code == 422 and "XYZ" in unknown.json()["detail"]


async def test_weekend_resolves_to_the_last_table(loaded: FakeCbr, user_client: Any) -> None:
    sunday = await user_client.get("/api/v1/rates/2026-04-26")
    assert sunday.status_code == 200
    body = sunday.json()
    assert (body["date"], body["requested_date"]) == ("2026-04-25", "2026-04-26")
    april_first = (await user_client.get("/api/v1/rates/2026-04-01")).json()
    assert (april_first["date"], april_first["requested_date"]) == ("2026-03-19", "2026-04-01")
    assert april_first["previous_date"] is None
    assert row_of(april_first, "HKD")["nominal"] == 1
    too_early = await user_client.get("/api/v1/rates/2026-01-01")
    assert too_early.status_code == 404 and "2026-01-01" in too_early.json()["detail"]
    assert (await user_client.get("/api/v1/rates/2026-02-30")).status_code == 422


async def test_etag_and_if_none_match(app: Any, loaded: FakeCbr, user_client: Any) -> None:
    for path in (
        "/api/v1/rates/latest",
        "/api/v1/rates/2026-04-26",
        "/api/v1/currencies",
        "/api/v1/rates/series?codes=USD&start=2026-03-01&end=2026-04-30",
        "/api/v1/convert?from=USD&to=EUR&amount=100",
    ):
        first = await user_client.get(path)
        etag = first.headers["etag"]
        again = await user_client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b"" and again.headers["etag"] == etag
        weak = await user_client.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
        assert weak.status_code == 304, path
        stale = await user_client.get(path, headers={"If-None-Match": '"stale"'})
        assert stale.status_code == 200 and stale.content == first.content
    # A correction changes the table, so the old ETag no longer matches.
    latest = await user_client.get("/api/v1/rates/latest")
    assert isinstance(loaded.daily, bytes)
    loaded.daily = loaded.daily.replace(
        b"<Value>75,5273</Value><VunitRate>75,5273", b"<Value>75,5274</Value><VunitRate>75,5274"
    )
    report = await app.state.rates.scheduler.run_once("manual")
    assert report.outcome == "corrected"
    after = await user_client.get(
        "/api/v1/rates/latest", headers={"If-None-Match": latest.headers["etag"]}
    )
    assert after.status_code == 200 and row_of(after.json(), "USD")["rate"] == "75.5274"


async def test_series(loaded: FakeCbr, user_client: Any) -> None:
    response = await user_client.get(
        "/api/v1/rates/series",
        params={"codes": "USD,JPY,RUB", "start": "2026-03-01", "end": "2026-04-30"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["codes"] == ["USD", "JPY", "RUB"]
    assert [(p["date"], p["rate"]) for p in body["series"]["USD"]] == [
        ("2026-03-19", "83.1259"),
        ("2026-04-25", "75.5273"),
    ]
    assert body["series"]["JPY"][1] == {
        "date": "2026-04-25",
        "rate": "0.472636",
        "nominal": 100,
        "value": "47.2636",
    }
    in_usd = await user_client.get(
        "/api/v1/rates/series",
        params={"codes": "RUB", "base": "USD", "start": "2026-04-25", "end": "2026-04-25"},
    )
    assert in_usd.json()["series"]["RUB"][0]["rate"] == str(
        Context(prec=10).plus(Context(prec=50).divide(1, Decimal("75.5273")))
    )
    for params in (
        {"codes": "USD", "start": "2025-01-01", "end": "2026-04-30"},  # over 366 days
        {"codes": "USD", "start": "2026-04-30", "end": "2026-04-01"},
        {"codes": "USD,XYZ"},
        {"codes": "USDX"},
        {"codes": ",,,"},
    ):
        refused = await user_client.get("/api/v1/rates/series", params=params)
        assert refused.status_code == 422, params


async def test_currencies(loaded: FakeCbr, user_client: Any) -> None:
    body = (await user_client.get("/api/v1/currencies")).json()
    by_code = {c["code"]: c for c in body["currencies"]}
    assert body["count"] == 55 and "RUB" in by_code
    assert by_code["USD"] == {
        "code": "USD",
        "cbr_id": "R01235",
        "num_code": "840",
        "name_ru": "Доллар США",
        "name_en": "",
        "nominal": 1,
        "first_date": "2026-03-19",
        "last_date": "2026-04-25",
    }
    assert by_code["HKD"]["nominal"] == 10  # the newest table's nominal


async def test_convert(loaded: FakeCbr, user_client: Any) -> None:
    jpy = await user_client.get(
        "/api/v1/convert", params={"from": "JPY", "to": "RUB", "amount": "1000"}
    )
    assert jpy.status_code == 200
    body = jpy.json()
    assert body["result"] == "472.64" and body["result_unrounded"] == "472.636"
    assert (body["rate"], body["date"], body["minor_units"], body["provider"]) == (
        "0.472636",
        "2026-04-25",
        2,
        "cbr",
    )
    eur = (
        await user_client.get("/api/v1/convert", params={"from": "EUR", "to": "USD", "amount": 1})
    ).json()
    exact = Context(prec=50).divide(Decimal("88.2826"), Decimal("75.5273"))
    assert Decimal(eur["rate"]) == Context(prec=10, rounding=ROUND_HALF_EVEN).plus(exact)
    assert eur["result"] == str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))
    to_yen = (
        await user_client.get("/api/v1/convert", params={"from": "USD", "to": "JPY", "amount": 1})
    ).json()
    assert "." not in to_yen["result"]  # JPY has no minor unit
    to_bhd = (
        await user_client.get("/api/v1/convert", params={"from": "USD", "to": "BHD", "amount": 1})
    ).json()
    assert len(to_bhd["result"].split(".")[1]) == 3
    on_march = (
        await user_client.get(
            "/api/v1/convert",
            params={"from": "USD", "to": "RUB", "amount": "2", "date": "2026-04-01"},
        )
    ).json()
    assert (on_march["result"], on_march["date"], on_march["requested_date"]) == (
        "166.25",
        "2026-03-19",
        "2026-04-01",
    )


BAD_CONVERSIONS = [
    {"amount": "0"},
    {"amount": "-1"},
    {"amount": "NaN"},
    {"amount": "Infinity"},
    {"amount": "1e999"},
    {"amount": "1e400"},
    {"amount": "-Infinity"},
    {"from": "usd"},
    {"to": "Eur"},
    {"amount": "1e16"},
    {"amount": "ten"},
    {"amount": ""},
    {"from": "XYZ"},
    {"from": "USDX"},
    {"to": "U$D"},
    {"to": ""},
    {"date": "2026-13-01"},
    {"date": "1990-01-01"},
    {"provider": "ecb"},
    {"provider": "apilayer"},  # not configured on this server
]


async def test_convert_refuses_bad_input_with_422(loaded: FakeCbr, user_client: Any) -> None:
    for params in BAD_CONVERSIONS:
        query = {"from": "USD", "to": "EUR", "amount": "100", **params}
        response = await user_client.get("/api/v1/convert", params=query)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["detail"], params


async def test_convert_names_a_missing_or_oversized_parameter(
    loaded: FakeCbr, user_client: Any
) -> None:
    missing = await user_client.get("/api/v1/convert", params={"from": "USD", "to": "EUR"})
    assert missing.status_code == 422
    assert [error["loc"] for error in missing.json()["detail"]] == [["query", "amount"]]
    secret = "x" * 70
    long = await user_client.get(
        "/api/v1/convert", params={"from": "USD", "to": "EUR", "amount": secret}
    )
    assert long.status_code == 422
    assert long.json()["detail"][0]["loc"] == ["query", "amount"]
    assert secret not in long.text  # the input is never echoed


# --- the optional APILayer provider --------------------------------------------------------


def apilayer(app: Any, handler: Any) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        result: httpx.Response = await handler(request)
        return result

    app.state.rates.settings.apilayer_api_key = "test-key"
    app.state.rates.apilayer_transport = httpx.MockTransport(record)
    return seen


async def test_apilayer_provider(app: Any, loaded: FakeCbr, user_client: Any) -> None:
    async def ok(request: httpx.Request) -> httpx.Response:
        body = (
            '{"success": true, "query": {"from": "USD", "to": "EUR", "amount": 100},'
            ' "info": {"timestamp": 1, "rate": 0.935123}, "date": "2026-04-25",'
            ' "result": 93.5123}'
        )
        return httpx.Response(200, text=body)

    seen = apilayer(app, ok)
    response = await user_client.get(
        "/api/v1/convert",
        params={"from": "USD", "to": "EUR", "amount": "100", "provider": "apilayer"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["provider"], body["result"], body["result_unrounded"], body["rate"]) == (
        "apilayer",
        "93.51",
        "93.5123",
        "0.935123",
    )
    assert seen[0].headers["apikey"] == "test-key"
    assert seen[0].url.path.endswith("/convert")
    assert dict(seen[0].url.params) == {"from": "USD", "to": "EUR", "amount": "100"}


APILAYER_FAILURES: list[tuple[httpx.Response | Exception, int]] = [
    (httpx.Response(500, text="oops"), 502),
    (httpx.Response(401, text="no"), 502),
    (httpx.Response(429, text="slow down"), 503),
    (httpx.Response(200, text="<html>"), 502),
    (httpx.Response(200, text='{"success": false, "error": {"code": 1}}'), 502),
    (httpx.Response(200, text='{"success": true, "info": {}, "result": "x"}'), 502),
    (httpx.ReadTimeout("slow"), 503),
    (httpx.ConnectError("down"), 503),
]


async def test_apilayer_failures_are_502_or_503(
    app: Any, loaded: FakeCbr, user_client: Any
) -> None:
    for answer, status in APILAYER_FAILURES:

        async def fail(request: httpx.Request, answer: Any = answer) -> httpx.Response:
            if isinstance(answer, Exception):
                raise answer
            assert isinstance(answer, httpx.Response)
            return answer

        apilayer(app, fail)
        response = await user_client.get(
            "/api/v1/convert",
            params={"from": "USD", "to": "EUR", "amount": "100", "provider": "apilayer"},
        )
        assert response.status_code == status, answer
        assert "APILayer" in json.loads(response.content)["detail"]


# --- the hot reads: ordinary routes answered from what they remember -----------------------

CONVERT = "/api/v1/convert?from=USD&to=EUR&amount=1234.56"
LATEST = "/api/v1/rates/latest"


def _computing_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, a request that computes its answer again fails loudly."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("computed again, not remembered")

    monkeypatch.setattr(conversions, "conversion_payload", refuse)
    monkeypatch.setattr(cache, "table_payload", refuse)


@pytest.mark.parametrize("path", [CONVERT, LATEST])
async def test_a_repeated_read_is_answered_with_the_same_bytes_without_computing(
    path: str, app: Any, loaded: FakeCbr, user_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await user_client.get(path)
    assert first.status_code == 200
    _computing_disabled(monkeypatch)
    remembered = await user_client.get(path)
    assert remembered.status_code == 200 and remembered.content == first.content
    for header in ("etag", "cache-control", "content-type", "x-request-id", "x-frame-options"):
        assert header in remembered.headers, header
        if header != "x-request-id":
            assert remembered.headers[header] == first.headers[header]
    again = await user_client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_the_fast_path_is_gone() -> None:
    """One pipeline: no read is answered before routing any more."""
    import importlib.util

    assert importlib.util.find_spec("fxdesk.rates.fastpath") is None


async def test_the_hot_reads_check_the_session(
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
    await sign_in(app, client, user)
    for path in (CONVERT, LATEST):
        assert (await client.get(path)).status_code == 200
        # No session, a forged one: 401.
        anonymous = await make_client().get(path)
        assert anonymous.status_code == 401
        forged = await make_client().get(path, headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code == 401
    never_asked = await make_client().get("/api/v1/convert?from=USD&to=EUR&amount=777")
    assert never_asked.status_code == 401
    # Revoked behind the event path's back (no event): refused once the
    # instance's view of the session is MAX_AGE_SECONDS old at the latest.
    async with app.state.database.session() as session:
        await session.execute(
            update(User).where(User.id == user.id).values(token_version=User.token_version + 1)
        )
    started = time.monotonic()
    while (await client.get(LATEST)).status_code != 401:
        assert time.monotonic() - started < MAX_AGE_SECONDS + 0.5
        await asyncio.sleep(0.02)
    assert (await client.get(CONVERT)).status_code == 401


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
