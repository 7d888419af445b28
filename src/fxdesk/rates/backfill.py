"""The backfill: every table in force between two days, one day per request; resumable.

It shares the fetch job's lease, logging and storing (`fxdesk.rates.scheduler`), so a running
server's polls interleave with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from fxdesk.config import Settings
from fxdesk.db import Database, utcnow
from fxdesk.events.lease import acquire_lease, release_lease
from fxdesk.rates.cbr.records import CbrError
from fxdesk.rates.exceptions import FetchBusy
from fxdesk.rates.fetchlog import covered_days
from fxdesk.rates.scheduler import LEASE_NAME, ClientFactory, RatesScheduler, lease_ttl


@dataclass(slots=True)
class BackfillReport:
    days: int = 0
    skipped: int = 0
    fetched: int = 0
    tables_added: int = 0
    failed: list[dt.date] = field(default_factory=list)


Progress = Callable[[dt.date, str], None]


async def backfill(
    database: Database,
    settings: Settings,
    client_factory: ClientFactory,
    since: dt.date,
    until: dt.date,
    *,
    holder: str,
    progress: Progress | None = None,
    pause_seconds: float = 0.0,
    lease_wait_seconds: float = 120.0,
) -> BackfillReport:
    """Store every table in force between two days; resumable and idempotent.

    One XML_daily?date_req= request per calendar day not yet covered: a day that already has a
    table, or that an earlier backfill resolved (a weekend answers with Friday's table), is
    skipped. Each day is stored in its own transaction under the fetch lease, so an interrupted
    backfill resumes where it stopped and a running server's polls interleave with it.
    """
    if since > until:
        raise ValueError("--since is after the end date")
    async with database.session(write=False) as session:
        covered = await covered_days(session, since, until)
    days = [since + dt.timedelta(days=n) for n in range((until - since).days + 1)]
    report = BackfillReport(days=len(days))
    scheduler = RatesScheduler(database, settings, holder, client_factory)
    ttl = lease_ttl(settings)
    async with client_factory() as client:
        for day in days:
            if day in covered:
                report.skipped += 1
                if progress:
                    progress(day, "skipped")
                continue
            waited = 0.0
            while not await acquire_lease(database, LEASE_NAME, holder, ttl):
                if waited >= lease_wait_seconds:
                    raise FetchBusy()
                await asyncio.sleep(1.0)
                waited += 1.0
            try:
                started = utcnow()
                try:
                    table = await client.daily(day)
                except CbrError as exc:
                    await scheduler.log_failure("backfill", "cbr", exc, day, started=started)
                    report.failed.append(day)
                    if progress:
                        progress(day, "failed")
                    continue
                result = await scheduler.store_table(
                    table, {}, "backfill", requested=day, started=started
                )
            finally:
                await release_lease(database, LEASE_NAME, holder)
            report.fetched += 1
            if result.inserted and result.outcome in ("published", "history"):
                report.tables_added += 1
            if progress:
                progress(day, f"{table.date.isoformat()}: {result.outcome}")
            if pause_seconds:
                await asyncio.sleep(pause_seconds)
    return report
