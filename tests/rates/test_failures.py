"""Failed fetches are logged and change nothing; concurrent refreshes never duplicate rows."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

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
