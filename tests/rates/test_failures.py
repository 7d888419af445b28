"""Failed fetches are logged and change nothing; concurrent refreshes never duplicate rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fxdesk.rates.backfill import backfill
from fxdesk.rates.cbr.configured import make_cbr_client
from fxdesk.rates.models import Rate
from tests.rates.conftest import CHALLENGE, DAILY_0425, FakeCbr, count, fetch, fetch_log


@pytest.mark.parametrize("failure", ["challenge page", "server error", "timeout"])
async def test_a_failed_fetch_is_logged_and_the_last_good_table_keeps_serving(
    failure: str, app: Any, fake_cbr: FakeCbr, user_client: Any
) -> None:
    assert (await fetch(app, fake_cbr, DAILY_0425)).status == "ok"
    before = await user_client.get("/api/v1/rates/latest")
    assert before.status_code == 200

    if failure == "challenge page":
        fake_cbr.daily = CHALLENGE
    elif failure == "server error":
        fake_cbr.daily = 502
    else:
        answer = fake_cbr._answer

        def time_out(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("XML_daily.asp"):
                raise httpx.ReadTimeout("timed out", request=request)
            return answer(request)

        fake_cbr._answer = time_out  # type: ignore[method-assign]
    report = await app.state.rates.scheduler.run_once("manual")

    assert report.status == "failed"
    log = await fetch_log(app)
    assert [(row.source, row.outcome) for row in log[-2:]] == [
        ("cbr", "failed"),
        ("mirror", "failed"),
    ]
    assert log[-2].error
    after = await user_client.get("/api/v1/rates/latest")
    assert after.status_code == 200
    assert after.json() == before.json()  # the last good table keeps serving
    assert await count(app, Rate) == 54


async def test_concurrent_refreshes_never_duplicate_rows(
    app: Any, fake_cbr: FakeCbr, admin_client: Any
) -> None:
    fake_cbr.gate = asyncio.Event()
    calls = [asyncio.create_task(admin_client.post("/api/v1/rates/refresh")) for _ in range(4)]
    await asyncio.wait_for(fake_cbr.arrived.wait(), 5)
    fake_cbr.gate.set()
    responses = await asyncio.gather(*calls)
    assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]
    assert any(r.status_code == 200 for r in responses)
    async with app.state.database.session(write=False) as session:
        rows = await session.scalar(select(func.count()).select_from(Rate))
        distinct = await session.scalar(
            select(func.count()).select_from(select(Rate.code, Rate.date).distinct().subquery())
        )
    assert rows == distinct == 54


# Upstream latency of the fake: each request answers only after this long.
LATENCY = 0.15


def _slow(answer: Any) -> httpx.MockTransport:
    """A transport whose every request takes LATENCY before `answer(request)` happens."""

    async def handle(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(LATENCY)
        result: httpx.Response = answer(request)
        return result

    return httpx.MockTransport(handle)


def _timed_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("failure", ["server error", "timeout"])
async def test_a_failed_fetch_records_when_it_really_started(
    failure: str, retries: int, app: Any, user_client: Any
) -> None:
    app.state.settings.cbr_retries = retries
    app.state.settings.cbr_backoff_seconds = 0.01
    requests: list[str] = []

    def fail(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path.rsplit("/", 1)[-1])
        if failure == "timeout":
            return _timed_out(request)
        return httpx.Response(502, text="bad gateway")

    app.state.rates.cbr_transport = _slow(fail)
    report = await app.state.rates.scheduler.run_once("manual")
    assert report.status == "failed"

    attempts = {"cbr": requests.count("XML_daily.asp"), "mirror": requests.count("daily_json.js")}
    assert attempts == {"cbr": retries + 1, "mirror": retries + 1}
    cbr, mirror = (await fetch_log(app))[-2:]
    assert (cbr.source, cbr.outcome, mirror.source, mirror.outcome) == (
        "cbr",
        "failed",
        "mirror",
        "failed",
    )
    for row in (cbr, mirror):
        # From before the first attempt to after the last: every attempt's latency is inside.
        took = (row.finished_at - row.started_at).total_seconds()
        assert took >= LATENCY * (retries + 1), (row.source, row.started_at, row.finished_at)
    assert cbr.finished_at <= mirror.started_at  # the mirror is asked once cbr.ru gave up

    # And that is what the status page shows.
    status = await user_client.get("/api/v1/rates/status")
    assert status.status_code == 200
    shown = {a["id"]: a for a in status.json()["attempts"]}[cbr.id]
    assert dt.datetime.fromisoformat(shown["finished_at"]) - dt.datetime.fromisoformat(
        shown["started_at"]
    ) >= dt.timedelta(seconds=LATENCY * (retries + 1))


async def test_a_good_fetch_records_the_time_from_its_request(app: Any, fake_cbr: FakeCbr) -> None:
    app.state.rates.cbr_transport = _slow(fake_cbr._answer)
    assert (await app.state.rates.scheduler.run_once("manual")).status == "ok"
    row = (await fetch_log(app))[-1]
    assert (row.source, row.outcome) == ("cbr", "published")
    assert (row.finished_at - row.started_at).total_seconds() >= LATENCY


async def test_a_failed_backfill_day_records_when_it_really_started(
    app: Any, fake_cbr: FakeCbr
) -> None:
    settings = app.state.settings
    settings.cbr_retries, settings.cbr_backoff_seconds = 1, 0.01
    fake_cbr.by_date = {dt.date(2026, 4, 26): 503}
    report = await backfill(
        app.state.database,
        settings,
        lambda: make_cbr_client(settings, _slow(fake_cbr._answer)),
        dt.date(2026, 4, 26),
        dt.date(2026, 4, 26),
        holder="backfill-test",
    )
    assert report.failed == [dt.date(2026, 4, 26)]
    row = (await fetch_log(app))[-1]
    assert (row.trigger, row.outcome) == ("backfill", "failed")
    assert (row.finished_at - row.started_at).total_seconds() >= 2 * LATENCY  # both attempts
