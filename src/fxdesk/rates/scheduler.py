"""The CBR fetch job: scheduled, under a DB lease, never overlapping (the backfill is beside it).

It runs at start and every poll interval plus jitter; one instance at a time holds the lease;
runs of one instance queue on a lock; every attempt lands in fetch_log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import Counter

from fxdesk.config import Settings
from fxdesk.db import Database, utcnow
from fxdesk.events.lease import acquire_lease, release_lease
from fxdesk.logging import get_logger
from fxdesk.rates.cbr.client import CbrClient
from fxdesk.rates.cbr.records import CbrError, CbrTable
from fxdesk.rates.exceptions import FetchBusy, FetchFailed
from fxdesk.rates.fetchlog import fetched_since, prune_fetch_log, record_fetch
from fxdesk.rates.ingest import IngestResult, ingest_table
from fxdesk.rates.tables import has_table, load_currencies, moscow_today, table_date_as_of
from fxdesk.tasking import stop_task

log = get_logger("fxdesk.rates.scheduler")

LEASE_NAME = "rates-fetch"
PRUNE_EVERY = dt.timedelta(days=1)
_jitter = random.SystemRandom()

RATES_FETCHES = Counter(
    "fxdesk_rates_fetches_total", "CBR fetch attempts by source and outcome", ["source", "outcome"]
)

Trigger = Literal["schedule", "manual", "cli", "backfill"]
ClientFactory = Callable[[], CbrClient]


def lease_ttl(settings: Settings) -> float:
    """Longer than the slowest possible run (cbr.ru, the mirror, English names, all retried)."""
    one_source = settings.cbr_timeout_seconds * (settings.cbr_retries + 1) + 10.0 * (
        settings.cbr_retries
    )
    return 3 * one_source + 60.0


@dataclass(slots=True)
class FetchReport:
    """What one run did; `status` busy means another instance holds the lease."""

    trigger: Trigger
    status: Literal["ok", "busy", "recent", "failed"]
    outcome: str | None = None
    source: str | None = None
    table_date: dt.date | None = None
    rows_changed: int = 0
    error: str | None = None
    extra_tables: list[dt.date] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.status == "busy":
            return FetchBusy.detail
        if self.status == "recent":
            return "Skipped: another instance fetched the rates moments ago"
        if self.status == "failed":
            return f"Fetching the CBR rates failed: {self.error}"
        assert self.table_date is not None
        return (
            f"CBR table of {self.table_date.isoformat()} from {self.source}: "
            f"{self.outcome}, {self.rows_changed} rows changed"
        )

    def raise_for_status(self) -> None:
        if self.status == "busy":
            raise FetchBusy()
        if self.status == "failed":
            raise FetchFailed(self.message)


class RatesScheduler:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        holder: str,
        client_factory: ClientFactory,
        *,
        after_run: Callable[[], Awaitable[object]] | None = None,
        today: Callable[[], dt.date] = moscow_today,
    ) -> None:
        self.database = database
        self.settings = settings
        self.holder = holder
        self.client_factory = client_factory
        self.after_run = after_run
        self.today = today
        self.next_run_at: dt.datetime | None = None
        self.running = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_prune: dt.datetime | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.rates_autostart:
            self._task = asyncio.create_task(self._loop(), name="rates-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        self.next_run_at = None

    def _next_delay(self) -> float:
        return self.settings.rates_poll_seconds + _jitter.uniform(
            0, self.settings.rates_poll_jitter_seconds
        )

    async def _loop(self) -> None:
        delay = 0.0  # at start: a fresh instance should not serve yesterday's table for 10 min
        while True:
            self.next_run_at = utcnow() + dt.timedelta(seconds=delay)
            await asyncio.sleep(delay)
            try:
                await self.run_once("schedule")
                await self._prune_now_and_then()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must outlive any one bad run
                log.error("rates_run_crashed", error=str(exc) or type(exc).__name__, exc_info=exc)
            delay = self._next_delay()

    async def _prune_now_and_then(self) -> None:
        now = utcnow()
        if self._last_prune is None or now - self._last_prune > PRUNE_EVERY:
            self._last_prune = now
            async with self.database.session() as session:
                await prune_fetch_log(session, now)

    # --- one run ---------------------------------------------------------------------------

    async def run_once(self, trigger: Trigger = "manual") -> FetchReport:
        """Fetch the newest table and store what changed, unless another instance is at it."""
        async with self._lock:  # runs of one instance queue up; they never overlap
            if not await acquire_lease(
                self.database, LEASE_NAME, self.holder, lease_ttl(self.settings)
            ):
                log.info("rates_fetch_skipped", reason="lease held elsewhere", trigger=trigger)
                report = FetchReport(trigger, "busy")
            else:
                self.running = True
                try:
                    if trigger == "schedule" and await self._fetched_recently():
                        # Every instance ticks; the first one in each interval does the work.
                        report = FetchReport(trigger, "recent")
                    else:
                        report = await self._fetch_and_store(trigger)
                finally:
                    self.running = False
                    with contextlib.suppress(Exception):
                        await release_lease(self.database, LEASE_NAME, self.holder)
        if self.after_run is not None:
            try:
                await self.after_run()
            except Exception as exc:
                log.warning("rates_after_run_failed", error=str(exc) or type(exc).__name__)
        return report

    async def _fetch_and_store(self, trigger: Trigger) -> FetchReport:
        async with self.client_factory() as client:
            newest = await self._newest_table(client, trigger)
            if isinstance(newest, str):
                return FetchReport(trigger, "failed", error=newest)
            table, started = newest
            names = await self._english_names(client, table)
            result = await self.store_table(table, names, trigger, started=started)
            report = FetchReport(
                trigger,
                "ok",
                outcome=result.outcome,
                source=table.source,
                table_date=table.date,
                rows_changed=result.rows_changed,
            )
            today = self.today()
            if table.date > today and not await self._has_table_for(today):
                # A first run after CBR published tomorrow's table: today's is needed too.
                started = utcnow()
                try:
                    earlier = await client.daily(today)
                except CbrError as exc:
                    await self.log_failure(trigger, "cbr", exc, today, started=started)
                else:
                    extra = await self.store_table(
                        earlier, names, trigger, requested=today, started=started
                    )
                    report.rows_changed += extra.rows_changed
                    report.extra_tables.append(earlier.date)
        log.info(
            "rates_fetched",
            trigger=trigger,
            source=report.source,
            table_date=str(report.table_date),
            outcome=report.outcome,
            rows_changed=report.rows_changed,
        )
        return report

    async def _newest_table(
        self, client: CbrClient, trigger: Trigger
    ) -> tuple[CbrTable, dt.datetime] | str:
        """cbr.ru first, the mirror only when cbr.ru keeps failing; else the error text.

        A table comes with the time its source was first asked (before any retry). Each failed
        source is a fetch_log row of its own, from its first attempt to its last.
        """
        started = utcnow()
        try:
            return await client.daily(), started
        except CbrError as exc:
            await self.log_failure(trigger, "cbr", exc, started=started)
            primary = str(exc)
        started = utcnow()
        try:
            return await client.mirror_daily(), started
        except CbrError as exc:
            await self.log_failure(trigger, "mirror", exc, started=started)
            return f"cbr.ru: {primary}; mirror: {exc}"

    async def _english_names(self, client: CbrClient, table: CbrTable) -> dict[str, str]:
        """English names, asked for once per new table and only if some currency lacks one."""
        async with self.database.session(write=False) as session:
            if await has_table(session, table.date):
                return {}  # a repeated poll: no second request for every unchanged table
            known = {c.code: c.name_en for c in await load_currencies(session)}
        if all(known.get(rate.code) for rate in table.rates):
            return {}
        try:
            return await client.daily_english(table.date)
        except CbrError as exc:  # names are a nicety: the rates are stored regardless
            log.info("rates_english_names_unavailable", error=str(exc))
            return {}

    async def store_table(
        self,
        table: CbrTable,
        names: dict[str, str],
        trigger: Trigger,
        requested: dt.date | None = None,
        *,
        started: dt.datetime,
    ) -> IngestResult:
        """Ingest `table` and log the fetch as running from `started` (when its source was
        first asked, before any retry) until now."""
        async with self.database.session() as session:
            result = await ingest_table(session, table, names)
            await record_fetch(
                session,
                started_at=started,
                trigger=trigger,
                source=table.source,
                requested_date=requested,
                outcome=result.outcome,
                body_hash=table.body_hash,
                table_date=table.date,
                rows_changed=result.rows_changed,
            )
        RATES_FETCHES.labels(table.source, result.outcome).inc()
        return result

    async def log_failure(
        self,
        trigger: Trigger,
        source: str,
        exc: CbrError,
        requested: dt.date | None = None,
        *,
        started: dt.datetime,
    ) -> None:
        """Log a failed fetch as running from `started` (its first attempt) until now."""
        log.warning("rates_fetch_failed", trigger=trigger, source=source, error=str(exc))
        RATES_FETCHES.labels(source, "failed").inc()
        async with self.database.session() as session:
            await record_fetch(
                session,
                started_at=started,
                trigger=trigger,
                source=source,
                requested_date=requested,
                outcome="failed",
                error=str(exc),
            )

    async def _fetched_recently(self) -> bool:
        """True when some instance got an answer within the last half poll interval."""
        since = utcnow() - dt.timedelta(seconds=self.settings.rates_poll_seconds / 2)
        async with self.database.session(write=False) as session:
            return await fetched_since(session, since)

    async def _has_table_for(self, day: dt.date) -> bool:
        async with self.database.session(write=False) as session:
            return await table_date_as_of(session, day) is not None
