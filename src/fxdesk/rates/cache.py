"""The fast read path: the newest tables in memory per instance, kept current by rate events.

Every instance hears every rate event from its event consumer (the stream), so a table fetched
on one instance reaches the memory of all of them. Bodies of /rates/latest and /currencies are
encoded once per table change (and per base) with their ETag, so a read is a dict lookup; the
shapes themselves are built in `fxdesk.rates.payloads`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fxdesk.caching import Encoded, encode
from fxdesk.db import Database, utcnow
from fxdesk.events.schemas import Channel
from fxdesk.logging import get_logger
from fxdesk.rates.exceptions import NoRatesYet
from fxdesk.rates.money import BASE_CODE, RUB_NAMES, RUB_NUM_CODE
from fxdesk.rates.payloads import currencies_payload, table_payload
from fxdesk.rates.snapshots import CurrencyInfo, RateTable
from fxdesk.rates.tables import load_currencies, load_newest_tables, moscow_today
from fxdesk.tasking import stop_task

log = get_logger("fxdesk.rates.cache")

# The table in force, the one before it (change arrows) and a published "tomorrow".
WINDOW = 3
MEMO_LIMIT = 256
ANSWERS_LIMIT = 4096
RELOAD_SETTLE_SECONDS = 0.05

# (route, Moscow day, raw query string)
AnswerKey = tuple[str, dt.date, bytes]


@dataclass(slots=True)
class Snapshot:
    """What one reload read: the newest tables (newest first) and every known currency."""

    tables: tuple[RateTable, ...]
    currencies: dict[str, CurrencyInfo]
    loaded_at: dt.datetime
    memo: dict[tuple[Any, ...], Encoded] = field(default_factory=dict)
    # Answers given with today's table, by (route, today, raw query string): the same question
    # asked again is answered with the bytes already encoded, before its query is even parsed.
    answers: dict[AnswerKey, Encoded] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when the window holds every stored table (fewer than WINDOW exist)."""
        return len(self.tables) < WINDOW


class RatesCache:
    def __init__(self, database: Database, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.database = database
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self._reload_lock = asyncio.Lock()
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._reloader(), name="rates-cache-reloader")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    def on_event(self, seq: int, channel: Channel, text: str) -> None:
        """Event consumer listener: an official rate event means the stored tables changed."""
        if channel is not Channel.rates:
            return
        try:
            manual = json.loads(text).get("manual") is True
        except (ValueError, AttributeError):
            manual = False
        if not manual:  # manual rates live apart and never enter these tables
            self._dirty.set()

    async def _reloader(self) -> None:
        while True:
            await self._dirty.wait()
            # A table arrives as a burst of events: one reload after the burst, not one each.
            await asyncio.sleep(RELOAD_SETTLE_SECONDS)
            self._dirty.clear()
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("rates_cache_reload_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1.0)
                self._dirty.set()

    async def reload(self) -> Snapshot:
        # Serialised: a reload that started earlier can never overwrite a newer one.
        async with self._reload_lock:
            async with self.database.session(write=False) as session:
                tables = await load_newest_tables(session, WINDOW)
                currencies = await load_currencies(session)
            self.snapshot = Snapshot(
                tables=tuple(tables),
                currencies={c.code: c for c in currencies},
                loaded_at=utcnow(),
            )
            log.debug("rates_cache_loaded", tables=[t.date.isoformat() for t in tables])
            return self.snapshot

    async def current(self) -> Snapshot:
        return self.snapshot if self.snapshot is not None else await self.reload()

    # --- reads -----------------------------------------------------------------------------

    def today(self) -> dt.date:
        return moscow_today(self.clock())

    @staticmethod
    def in_force(
        snapshot: Snapshot, today: dt.date
    ) -> tuple[RateTable | None, RateTable | None, RateTable | None]:
        """(table in force today, the table before it, a published table for a later day)."""
        upcoming = None
        for index, table in enumerate(snapshot.tables):
            if table.date > today:
                upcoming = table
                continue
            before = snapshot.tables[index + 1] if index + 1 < len(snapshot.tables) else None
            return table, before, upcoming
        return None, None, upcoming

    @staticmethod
    def window_as_of(
        snapshot: Snapshot, on: dt.date
    ) -> tuple[RateTable | None, RateTable | None] | None:
        """(table in force on `on`, its predecessor) from memory; None when memory cannot say."""
        tables = snapshot.tables
        for index, table in enumerate(tables):
            if table.date > on:
                continue
            if index + 1 < len(tables):
                return table, tables[index + 1]
            return (table, None) if snapshot.complete else None
        return (None, None) if snapshot.complete else None

    def codes(self, snapshot: Snapshot) -> list[str]:
        current, _, _ = self.in_force(snapshot, self.today())
        return current.codes() if current else [BASE_CODE]

    def latest(self, snapshot: Snapshot, base: str) -> Encoded:
        today = self.today()
        current, previous, upcoming = self.in_force(snapshot, today)
        if current is None:
            raise NoRatesYet("No CBR table in force today is stored yet")
        payload = {
            "today": today.isoformat(),
            **table_payload(current, previous, base, snapshot.currencies),
            "next": (
                table_payload(upcoming, current, base, snapshot.currencies)
                if upcoming is not None and upcoming.unit(base) is not None
                else None
            ),
        }
        return encode(payload)

    def currencies(self, snapshot: Snapshot) -> Encoded:
        key = ("currencies",)
        cached = snapshot.memo.get(key)
        if cached is not None:
            return cached
        rub = CurrencyInfo(BASE_CODE, None, RUB_NUM_CODE, *RUB_NAMES, 1, None, None)
        items = sorted([*snapshot.currencies.values(), rub], key=lambda c: c.code)
        return self._remember(snapshot, key, encode(currencies_payload(items)))

    def answer_key(self, route: str, query: bytes) -> AnswerKey:
        """Where `route`'s answer to a query string is kept. Read before the answer is
        computed, so an answer computed across midnight is kept under the day it began on,
        never under the new day."""
        return (route, self.today(), query)

    @staticmethod
    def answer(snapshot: Snapshot, key: AnswerKey) -> Encoded | None:
        """The answer already given under `key` with this snapshot's tables, if any."""
        return snapshot.answers.get(key)

    @staticmethod
    def remember_answer(snapshot: Snapshot, key: AnswerKey, encoded: Encoded) -> Encoded:
        """Keep an answer that depends on nothing but its query string and the stored tables."""
        if len(snapshot.answers) >= ANSWERS_LIMIT:
            snapshot.answers.clear()
        snapshot.answers[key] = encoded
        return encoded

    @staticmethod
    def _remember(snapshot: Snapshot, key: tuple[Any, ...], encoded: Encoded) -> Encoded:
        if len(snapshot.memo) >= MEMO_LIMIT:
            snapshot.memo.clear()
        snapshot.memo[key] = encoded
        return encoded
