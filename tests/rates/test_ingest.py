"""Storing CBR tables: only changes are written and announced; corrections keep a revision."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from fxdesk.events.models import OutboxEvent
from fxdesk.rates.cbr.daily import parse_daily
from fxdesk.rates.cbr.fields import unit_rate
from fxdesk.rates.cbr.records import CbrRate, CbrTable
from fxdesk.rates.ingest import IngestResult, ingest_table
from fxdesk.rates.models import Currency, Rate, RateRevision
from tests.rates.conftest import (
    DAILY_0319,
    DAILY_0425,
    FakeCbr,
    count,
    fetch,
    fetch_log,
    fixture_bytes,
    outbox,
    rate_rows,
)

APRIL = parse_daily(fixture_bytes(DAILY_0425))
MARCH = parse_daily(fixture_bytes(DAILY_0319))


def with_rate(table: CbrTable, code: str, value: str, nominal: int | None = None) -> CbrTable:
    """`table` with one currency's published figures changed (as a CBR correction would)."""
    rates = []
    for rate in table.rates:
        if rate.code == code:
            nominal = nominal or rate.nominal
            rate = dataclasses.replace(
                rate,
                value=Decimal(value),
                nominal=nominal,
                unit_rate=unit_rate(Decimal(value), nominal),
            )
        rates.append(rate)
    return dataclasses.replace(table, rates=tuple(rates), body_hash="corrected")


async def ingest(app: Any, table: CbrTable) -> IngestResult:
    async with app.state.database.session() as session:
        return await ingest_table(session, table)


async def test_polling_the_same_table_twice_writes_and_emits_nothing(
    app: Any, fake_cbr: FakeCbr
) -> None:
    first = await fetch(app, fake_cbr, DAILY_0425)
    assert (first.status, first.outcome, first.rows_changed) == ("ok", "published", 54)
    assert first.table_date == dt.date(2026, 4, 25)  # the table's Date, not the day it was polled
    events, rates = await outbox(app), await count(app, Rate)

    second = await fetch(app, fake_cbr, DAILY_0425)
    assert (second.status, second.outcome, second.rows_changed) == ("ok", "unchanged", 0)
    assert await outbox(app) == events
    assert await count(app, Rate) == rates == 54
    log = await fetch_log(app)
    assert [(row.source, row.outcome, row.rows_changed) for row in log] == [
        ("cbr", "published", 54),
        ("cbr", "unchanged", 0),
    ]
    assert log[0].body_hash == log[1].body_hash == APRIL.body_hash
    assert log[0].table_date == dt.date(2026, 4, 25)


async def test_first_table_creates_every_currency(app: Any, fake_cbr: FakeCbr) -> None:
    await fetch(app, fake_cbr, DAILY_0319)
    events = await outbox(app)
    assert [e["event"] for e in events] == ["rates_published"] + ["rate_created"] * 54
    published = events[0]
    assert (published["date"], published["count"], published["previous_date"]) == (
        "2026-03-19",
        54,
        None,
    )
    usd = next(e for e in events if e.get("code") == "USD")
    assert usd["value"] == "83.1259" and usd["name"] == "Доллар США"
    assert set(usd) >= {"id", "code", "name", "value", "created_at"}
    assert usd["manual"] is False
    async with app.state.database.session(write=False) as session:
        hkd = await session.get(Currency, "HKD")
    assert hkd is not None
    assert (hkd.cbr_id, hkd.num_code, hkd.nominal) == ("R01200", "344", 1)
    assert hkd.first_date == hkd.last_date == dt.date(2026, 3, 19)


async def test_new_date_emits_published_and_one_update_per_changed_currency(
    app: Any, fake_cbr: FakeCbr
) -> None:
    # March without AUD: in April, AUD is a currency seen for the first time.
    await ingest(
        app, dataclasses.replace(MARCH, rates=tuple(r for r in MARCH.rates if r.code != "AUD"))
    )
    before = len(await outbox(app))
    report = await fetch(app, fake_cbr, DAILY_0425)
    assert (report.outcome, report.rows_changed) == ("published", 54)
    events = (await outbox(app))[before:]
    march, april = MARCH.by_code(), APRIL.by_code()
    del march["AUD"]
    moved = {c for c in april if c in march and march[c].unit_rate != april[c].unit_rate}
    assert events[0]["event"] == "rates_published"
    assert events[0]["date"] == "2026-04-25" and events[0]["previous_date"] == "2026-03-19"
    assert {c["code"] for c in events[0]["changes"]} == moved | {"AUD"}
    updated = {e["code"]: e for e in events if e["event"] == "rate_updated"}
    created = [e["code"] for e in events if e["event"] == "rate_created"]
    assert created == ["AUD"]
    assert set(updated) == moved
    assert updated["JPY"]["value"] == "0.472636"
    assert updated["JPY"]["previous_value"] == "0.52241"
    assert updated["HKD"]["nominal"] == 10 and updated["HKD"]["published_value"] == "96.5699"
    async with app.state.database.session(write=False) as session:
        hkd = await session.get(Currency, "HKD")
    assert hkd is not None and hkd.nominal == 10 and hkd.last_date == dt.date(2026, 4, 25)


async def test_unchanged_per_unit_rate_is_not_announced(app: Any, fake_cbr: FakeCbr) -> None:
    await ingest(app, MARCH)
    # April's table, but USD as in March: every currency but USD moved.
    april = with_rate(APRIL, "USD", "83.1259")
    async with app.state.database.session() as session:
        result = await ingest_table(session, april)
    assert "USD" not in result.changed_codes
    events = await outbox(app)
    assert not any(e.get("code") == "USD" and e["event"] == "rate_updated" for e in events)


async def test_a_correction_keeps_the_old_figures_as_a_revision(
    app: Any, fake_cbr: FakeCbr
) -> None:
    await fetch(app, fake_cbr, DAILY_0425)
    before = len(await outbox(app))
    result = await ingest(app, with_rate(APRIL, "USD", "75.6001"))
    assert (result.outcome, result.corrected, result.inserted) == ("corrected", 1, 0)
    async with app.state.database.session(write=False) as session:
        revisions = list(await session.scalars(select(RateRevision)))
        usd = await session.scalar(select(Rate).where(Rate.code == "USD"))
    assert len(revisions) == 1
    assert (revisions[0].code, revisions[0].value, revisions[0].unit_rate) == (
        "USD",
        Decimal("75.5273"),
        Decimal("75.5273"),
    )
    assert usd is not None and usd.value == Decimal("75.6001") and usd.id == revisions[0].rate_id
    events = (await outbox(app))[before:]
    assert [e["event"] for e in events] == ["rate_updated"]
    assert events[0]["value"] == "75.6001" and events[0]["previous_value"] == "75.5273"
    assert events[0]["correction"] is True and events[0]["id"] == usd.id


async def test_trailing_zeros_are_not_a_correction(app: Any, fake_cbr: FakeCbr) -> None:
    await ingest(app, APRIL)
    same = with_rate(APRIL, "USD", "75.527300")  # Decimal equality, not string equality
    result = await ingest(app, same)
    assert (result.outcome, result.rows_changed) == ("unchanged", 0)


async def test_an_older_table_is_history_and_stays_quiet(app: Any, fake_cbr: FakeCbr) -> None:
    await ingest(app, APRIL)
    before = len(await outbox(app))
    result = await ingest(app, MARCH)
    assert (result.outcome, result.inserted) == ("history", 54)
    assert len(await outbox(app)) == before
    async with app.state.database.session(write=False) as session:
        hkd = await session.get(Currency, "HKD")
    # The newest table still describes the currency; the older one only moves first_date.
    assert hkd is not None and hkd.nominal == 10 and hkd.first_date == dt.date(2026, 3, 19)


async def test_the_mirror_never_overrules_cbr(app: Any) -> None:
    await ingest(app, APRIL)
    mirror = dataclasses.replace(with_rate(APRIL, "USD", "80"), source="mirror")
    result = await ingest(app, mirror)
    assert result.rows_changed == 0
    usd = await rate_rows(app, lambda r: r.code == "USD")
    assert usd[0].value == Decimal("75.5273") and usd[0].source == "cbr"


async def test_a_rolled_back_ingest_leaves_no_event(app: Any) -> None:
    class Boom(Exception):
        pass

    try:
        async with app.state.database.session() as session:
            await ingest_table(session, APRIL)
            raise Boom
    except Boom:
        pass
    assert await count(app, Rate) == 0
    assert await count(app, OutboxEvent) == 0


def test_rates_keep_every_published_digit() -> None:
    rates: dict[str, CbrRate] = APRIL.by_code()
    assert rates["BYN"].value == Decimal("26.7960") and str(rates["BYN"].value) == "26.7960"
