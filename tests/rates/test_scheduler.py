"""The fetch job and backfill: lease, no overlap, fetch_log, failures, mirror, resume, CLI.

One instance at a time, no overlap, every attempt logged, failures never empty days, the mirror
as fallback, backfill resumable and idempotent, and the `fxdesk rates` commands.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fxdesk.cli import app as cli
from fxdesk.rates.backfill import backfill
from fxdesk.rates.cbr.configured import make_cbr_client
from fxdesk.rates.models import Currency, Rate
from fxdesk.rates.scheduler import RatesScheduler
from tests.rates.conftest import (
    CHALLENGE,
    DAILY_0319,
    DAILY_0425,
    MIRROR_2021,
    FakeCbr,
    count,
    fetch,
    fetch_log,
    fixture_bytes,
    moscow_noon,
    outbox,
    rate_rows,
)


def second_scheduler(app: Any, fake: FakeCbr, holder: str) -> RatesScheduler:
    """Another instance's scheduler over the same database."""
    settings = app.state.settings
    return RatesScheduler(
        app.state.database,
        settings,
        holder,
        lambda: make_cbr_client(settings, fake.transport()),
    )


async def test_only_one_instance_fetches_at_a_time(app: Any, fake_cbr: FakeCbr) -> None:
    other_fake = FakeCbr()
    other = second_scheduler(app, other_fake, "instance-b")
    fake_cbr.gate = asyncio.Event()
    first = asyncio.create_task(app.state.rates.scheduler.run_once("schedule"))
    await asyncio.wait_for(fake_cbr.arrived.wait(), 5)  # A holds the lease, waits on cbr.ru
    busy = await other.run_once("schedule")
    assert busy.status == "busy"
    assert other_fake.requests == []  # B never called out
    fake_cbr.gate.set()
    done = await first
    assert (done.status, done.rows_changed) == ("ok", 54)
    # The lease is released after the run: B may fetch now, and finds nothing new.
    other_fake.daily = fixture_bytes(DAILY_0425)
    after = await other.run_once("manual")
    assert (after.status, after.outcome) == ("ok", "unchanged")
    assert [row.outcome for row in await fetch_log(app)] == ["published", "unchanged"]


async def test_runs_in_one_instance_never_overlap(app: Any, fake_cbr: FakeCbr) -> None:
    fake_cbr.gate = asyncio.Event()
    runs = [asyncio.create_task(app.state.rates.scheduler.run_once()) for _ in range(3)]
    await asyncio.sleep(0.1)
    assert len(fake_cbr.requests) == 1  # the other two wait for the first
    fake_cbr.gate.set()
    reports = await asyncio.gather(*runs)
    assert [r.outcome for r in reports] == ["published", "unchanged", "unchanged"]
    assert fake_cbr.max_in_flight == 1


async def test_html_challenge_is_a_failed_attempt_not_an_empty_day(
    app: Any, fake_cbr: FakeCbr
) -> None:
    report = await fetch(app, fake_cbr, CHALLENGE)
    assert report.status == "failed"
    log = await fetch_log(app)
    assert [(row.source, row.outcome) for row in log] == [("cbr", "failed"), ("mirror", "failed")]
    assert "HTML page instead of XML" in (log[0].error or "")
    assert log[0].table_date is None and log[0].rows_changed == 0
    assert await count(app, Rate) == 0 and await count(app, Currency) == 0
    assert await outbox(app) == []


async def test_the_mirror_stands_in_when_cbr_keeps_failing(app: Any, fake_cbr: FakeCbr) -> None:
    fake_cbr.mirror = fixture_bytes(MIRROR_2021)
    app.state.rates.clock = lambda: moscow_noon(dt.date(2022, 1, 2))
    report = await fetch(app, fake_cbr, 503)
    assert (report.status, report.source, report.table_date) == (
        "ok",
        "mirror",
        dt.date(2021, 12, 31),
    )
    log = await fetch_log(app)
    assert [(row.source, row.outcome) for row in log] == [
        ("cbr", "failed"),
        ("mirror", "published"),
    ]
    rows = await rate_rows(app)
    assert rows and all(row.source == "mirror" for row in rows)
    published = (await outbox(app))[0]
    assert (published["event"], published["source"]) == ("rates_published", "mirror")


async def test_a_first_run_after_tomorrows_table_also_stores_todays(
    app: Any, fake_cbr: FakeCbr
) -> None:
    app.state.rates.clock = lambda: moscow_noon(dt.date(2026, 4, 24))
    fake_cbr.by_date[dt.date(2026, 4, 24)] = fixture_bytes(DAILY_0319)
    report = await fetch(app, fake_cbr, DAILY_0425)
    assert report.table_date == dt.date(2026, 4, 25)
    assert report.extra_tables == [dt.date(2026, 3, 19)]
    assert report.rows_changed == 108
    latest = await app.state.rates.cache.current()
    current, _, upcoming = app.state.rates.cache.in_force(latest, dt.date(2026, 4, 24))
    assert current is not None and current.date == dt.date(2026, 3, 19)
    assert upcoming is not None and upcoming.date == dt.date(2026, 4, 25)


async def test_backfill_is_resumable_and_idempotent(app: Any, fake_cbr: FakeCbr) -> None:
    database, settings = app.state.database, app.state.settings
    april = fixture_bytes(DAILY_0425)
    # Friday the 24th (pretend it was March's table), then a weekend and Monday on Saturday's.
    fake_cbr.by_date = {
        dt.date(2026, 4, 24): fixture_bytes(DAILY_0319),
        dt.date(2026, 4, 25): april,
        dt.date(2026, 4, 26): 500,  # fails this time
        dt.date(2026, 4, 27): april,
    }
    days: list[tuple[dt.date, str]] = []

    async def run() -> Any:
        return await backfill(
            database,
            settings,
            lambda: make_cbr_client(settings, fake_cbr.transport()),
            dt.date(2026, 4, 24),
            dt.date(2026, 4, 27),
            holder="backfill-test",
            progress=lambda day, what: days.append((day, what)),
        )

    first = await run()
    assert (first.days, first.skipped, first.fetched, first.tables_added) == (4, 0, 3, 2)
    assert first.failed == [dt.date(2026, 4, 26)]
    assert days[1] == (dt.date(2026, 4, 25), "2026-04-25: published")
    assert days[3] == (dt.date(2026, 4, 27), "2026-04-25: unchanged")

    fake_cbr.requests.clear()
    fake_cbr.by_date[dt.date(2026, 4, 26)] = april
    second = await run()
    assert (second.skipped, second.fetched, second.tables_added, second.failed) == (3, 1, 0, [])
    assert [r.url.params["date_req"] for r in fake_cbr.requests] == ["26/04/2026"]

    fake_cbr.requests.clear()
    third = await run()
    assert (third.skipped, third.fetched) == (4, 0) and fake_cbr.requests == []
    assert {row.date for row in await rate_rows(app)} == {
        dt.date(2026, 3, 19),
        dt.date(2026, 4, 25),
    }


runner = CliRunner()


def test_cli_rates_commands(tmp_path: Path) -> None:
    env = {
        "FXDESK_DATA_DIR": str(tmp_path),
        "FXDESK_LOG_LEVEL": "WARNING",
        "FXDESK_CBR_RETRIES": "0",
        "FXDESK_CBR_TIMEOUT_SECONDS": "2",
    }
    fetched = runner.invoke(cli, ["rates", "fetch"], env=env)
    assert fetched.exit_code == 1, fetched.output  # the closed loopback port set in conftest
    assert "Fetching the CBR rates failed" in fetched.output
    backwards = runner.invoke(
        cli, ["rates", "backfill", "--since", "2026-04-27", "--until", "2026-04-26"], env=env
    )
    assert backwards.exit_code == 2 and "after the end date" in backwards.output
    failing = runner.invoke(
        cli,
        ["rates", "backfill", "--since", "2026-04-26", "--until", "2026-04-27", "--pause", "0"],
        env=env,
    )
    assert failing.exit_code == 1, failing.output
    assert "2 failed" in failing.output and "2026-04-26" in failing.output
    assert runner.invoke(cli, ["rates", "backfill", "--since", "yesterday"], env=env).exit_code == 2


@pytest.mark.parametrize("setting", ["https://www.cbr-xml-daily.ru/", "https://m.example/x.js"])
def test_mirror_url_setting(setting: str) -> None:
    from fxdesk.rates.cbr.configured import mirror_daily_url

    url = mirror_daily_url(setting)
    assert url.endswith(".js") and url.startswith(setting.rstrip("/"))


async def test_scheduled_ticks_leave_the_work_to_the_first_instance(
    app: Any, fake_cbr: FakeCbr
) -> None:
    assert (await fetch(app, fake_cbr, DAILY_0425)).outcome == "published"
    other_fake = FakeCbr()
    other = second_scheduler(app, other_fake, "instance-b")
    tick = await other.run_once("schedule")
    assert tick.status == "recent" and other_fake.requests == []
    forced = await other.run_once("manual")  # an admin's refresh always asks cbr.ru
    assert forced.outcome == "unchanged" and len(other_fake.requests) == 1
