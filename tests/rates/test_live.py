"""End to end over real sockets: fake cbr.ru over HTTP, two instances, NATS and both sockets.

A fake cbr.ru on loopback HTTP, two fxdesk instances on one database, a real NATS subscriber,
/api/v1/ws and the seed's /ws/rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from fastapi import FastAPI, Response
from websockets.asyncio.client import ClientConnection, connect

from fxdesk.app import create_app
from fxdesk.rates.cbr.daily import parse_daily
from fxdesk.users.models import Role
from tests.conftest import DbTemplate
from tests.factories import add_user, api_client
from tests.live import next_event, serving, subscribe, token_for, ws_client
from tests.rates.conftest import DAILY_0319, DAILY_0425, fixture_bytes, moscow_noon, rates_settings

QUIET_SECONDS = 0.5


def fake_cbr_site(pages: dict[str, bytes]) -> FastAPI:
    """cbr.ru's /scripts/ over real HTTP, serving whatever `pages` holds at the time."""
    site = FastAPI()

    @site.get("/scripts/{name}")
    async def page(name: str) -> Response:
        if name not in pages:
            return Response("not here", status_code=404)
        return Response(pages[name], media_type="text/xml; charset=windows-1251")

    return site


@contextlib.asynccontextmanager
async def seed_socket(host: str, token: str) -> AsyncIterator[ClientConnection]:
    async with connect(
        f"ws://{host}/ws/rates",
        additional_headers={"Cookie": f"session_token={token}"},
        open_timeout=10,
    ) as ws:
        yield ws


async def frames(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(count)]


async def nothing_more(ws: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), QUIET_SECONDS)


async def test_fetches_reach_nats_both_sockets_and_the_other_instance(
    tmp_path: Path, db_template: DbTemplate, nats_url: str
) -> None:
    pages: dict[str, bytes] = {}
    nc = await nats.connect(nats_url)
    on_nats: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def collect(msg: Any) -> None:
        await on_nats.put({"subject": msg.subject, **json.loads(msg.data)})

    await nc.subscribe("rates.updates", cb=collect)

    async def nats_events(count: int) -> list[dict[str, Any]]:
        return [await asyncio.wait_for(on_nats.get(), 10) for _ in range(count)]

    async with serving(fake_cbr_site(pages)) as cbr_host:
        shared = tmp_path / "shared"
        shared.mkdir()
        first = rates_settings(
            shared, db_template, nats_url, cbr_base_url=f"http://{cbr_host}/scripts"
        )
        second = first.model_copy(update={"data_dir": tmp_path})
        app_a, app_b = create_app(first, migrate=False), create_app(second, migrate=False)
        for app in (app_a, app_b):
            app.state.rates.clock = lambda: moscow_noon(dt.date(2026, 11, 23))
        async with serving(app_a) as host_a, serving(app_b) as host_b:
            admin = await add_user(app_a, "boss", Role.admin)
            alice = await add_user(app_a, "alice", Role.user)
            api_a = api_client(host_a, await token_for(app_a, admin))
            api_b = api_client(host_b, await token_for(app_b, alice))
            async with (
                ws_client(host_b, await token_for(app_b, alice)) as live,
                seed_socket(host_a, await token_for(app_a, alice)) as seed,
            ):
                await subscribe(live, ["rates"])

                # 1. A first table on an empty desk: every currency is created.
                pages["XML_daily.asp"] = fixture_bytes(DAILY_0319)
                run = await api_a.post("/tasks/run")
                assert run.status_code == 200, run.text
                assert run.json()["message"].endswith("published, 54 rows changed")
                published = await nats_events(55)
                assert published[0]["event"] == "rates_published"
                assert published[0]["subject"] == "rates.updates"
                assert {e["event"] for e in published[1:]} == {"rate_created"}
                assert [(await next_event(live))["seq"] for _ in range(55)] == [
                    e["seq"] for e in published
                ]
                created = await frames(seed, 54)
                assert [f["seq"] for f in created] == [e["seq"] for e in published[1:]]
                usd = next(f for f in created if f["code"] == "USD")
                assert usd["event"] == "rate_created" and usd["value"] == "83.1259"
                assert {"id", "name", "created_at", "seq", "ts", "actor", "event_id"} <= set(usd)

                # 2. The same table again: nothing is written, nothing is said anywhere.
                again = await api_a.post("/tasks/run")
                assert again.json()["message"].endswith("unchanged, 0 rows changed")
                await nothing_more(seed)
                with pytest.raises(TimeoutError):
                    await next_event(live, timeout=QUIET_SECONDS)
                assert on_nats.empty()

                # 3. A new table date: one rates_published, one rate_updated per moved rate.
                pages["XML_daily.asp"] = fixture_bytes(DAILY_0425)
                refreshed = await api_a.post("/api/v1/rates/refresh")
                assert refreshed.json()["outcome"] == "published"
                march = parse_daily(fixture_bytes(DAILY_0319)).by_code()
                april = parse_daily(fixture_bytes(DAILY_0425)).by_code()
                moved = sorted(c for c in april if march[c].unit_rate != april[c].unit_rate)
                news = await nats_events(1 + len(moved))
                assert news[0]["event"] == "rates_published" and news[0]["date"] == "2026-04-25"
                assert sorted(e["code"] for e in news[1:]) == moved
                assert {e["event"] for e in news[1:]} == {"rate_updated"}
                on_live = [await next_event(live) for _ in news]
                assert [e["event_id"] for e in on_live] == [e["event_id"] for e in news]
                updated = await frames(seed, len(moved))
                assert {f["event"] for f in updated} == {"rate_updated"}
                jpy = next(f for f in updated if f["code"] == "JPY")
                assert (jpy["value"], jpy["previous_value"]) == ("0.472636", "0.52241")
                await nothing_more(seed)  # rates_published is not a seed frame

                # 4. Instance B heard the events and answers from its own memory.
                for _ in range(100):
                    latest = (await api_b.get("/api/v1/rates/latest")).json()
                    if latest.get("date") == "2026-04-25":
                        break
                    await asyncio.sleep(0.05)
                assert latest["date"] == "2026-04-25"
                convert = await api_b.get(
                    "/api/v1/convert", params={"from": "JPY", "to": "RUB", "amount": 1000}
                )
                assert convert.json()["result"] == "472.64"
            await api_a.aclose()
            await api_b.aclose()
    await nc.close()


async def test_ws_rates_refuses_without_a_session(
    tmp_path: Path, db_template: DbTemplate, nats_url: str
) -> None:
    app = create_app(rates_settings(tmp_path, db_template, nats_url), migrate=False)
    async with serving(app) as host, connect(f"ws://{host}/ws/rates", open_timeout=10) as ws:
        with pytest.raises(Exception) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert getattr(closed.value, "rcvd", None) is not None
        assert closed.value.rcvd.code == 1008  # type: ignore[attr-defined]
