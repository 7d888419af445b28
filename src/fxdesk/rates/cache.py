"""The fast read path: the newest tables in memory per instance, kept current by rate events.

Every instance hears every rate event from its event consumer (the stream), so a table fetched
on one instance reaches the memory of all of them. Bodies of /rates/latest and /currencies are
encoded once per table change (and per base) with their ETag, so a read is a dict lookup.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fxdesk.caching import Encoded, encode
from fxdesk.db import Database, utcnow
from fxdesk.events.schemas import Channel
from fxdesk.logging import get_logger
from fxdesk.rates.conversion import (
    BASE_CODE,
    RUB_NAMES,
    RUB_NUM_CODE,
    cross_rate,
    decimal_text,
    normalized_text,
    round_rate,
)
from fxdesk.rates.exceptions import NoRatesYet
from fxdesk.rates.models import Rate
from fxdesk.rates.service import (
    CurrencyInfo,
    RateTable,
    load_currencies,
    load_newest_tables,
    moscow_today,
)
from fxdesk.tasking import stop_task

log = get_logger("fxdesk.rates.cache")

# The table in force, the one before it (change arrows) and a published "tomorrow".
WINDOW = 3
MEMO_LIMIT = 256
CONVERSIONS_LIMIT = 4096
RELOAD_SETTLE_SECONDS = 0.05


def _row(
    code: str,
    name: str,
    info: CurrencyInfo | None,
    nominal: int,
    value: str,
    exact: Decimal,
    previous: Decimal | None,
    source: str,
) -> dict[str, Any]:
    return {
        "code": code,
        "num_code": info.num_code if info else None,
        "name": name,
        "name_en": info.name_en if info else "",
        "nominal": nominal,
        "value": value,
        "rate": normalized_text(round_rate(exact)),
        "rate_unrounded": normalized_text(exact),
        "previous_rate": None if previous is None else normalized_text(round_rate(previous)),
        "source": source,
    }


def table_payload(
    table: RateTable,
    previous: RateTable | None,
    base: str,
    currencies: dict[str, CurrencyInfo],
) -> dict[str, Any]:
    """A table in `base`: `rate` is units of `base` per one unit of each currency.

    `nominal` and `value` are always CBR's own figures (RUB per `nominal` units).
    """
    base_unit = table.unit(base)
    assert base_unit is not None, "the caller checks the base against the table"
    previous_base = previous.unit(base) if previous else None
    rows = []
    for code in sorted(table.rates):
        if code == base:
            continue
        rate = table.rates[code]
        before = previous.unit(code) if previous else None
        moved_from = (
            None if before is None or previous_base is None else cross_rate(before, previous_base)
        )
        rows.append(
            _row(
                code,
                rate.name,
                currencies.get(code),
                rate.nominal,
                decimal_text(rate.value),
                cross_rate(rate.unit_rate, base_unit),
                moved_from,
                rate.source,
            )
        )
    if base != BASE_CODE:
        rub = CurrencyInfo(BASE_CODE, None, RUB_NUM_CODE, *RUB_NAMES, 1, None, None)
        rows.append(
            _row(
                BASE_CODE,
                RUB_NAMES[0],
                rub,
                1,
                "1",
                cross_rate(Decimal(1), base_unit),
                None if previous_base is None else cross_rate(Decimal(1), previous_base),
                "cbr",
            )
        )
        rows.sort(key=lambda row: str(row["code"]))
    return {
        "date": table.date.isoformat(),
        "base": base,
        "source": table.source,
        "previous_date": previous.date.isoformat() if previous else None,
        "count": len(rows),
        "rates": rows,
    }


def series_points(
    rows: Sequence[Rate], codes: Sequence[str], base: str
) -> dict[str, list[dict[str, Any]]]:
    """Per code, its rate in `base` on each table date; both legs always from the same table."""
    by_date: dict[dt.date, dict[str, Rate]] = {}
    for row in rows:
        by_date.setdefault(row.date, {})[row.code] = row
    one = Decimal(1)
    points: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
    for day, table in sorted(by_date.items()):
        base_unit = table[base].unit_rate if base in table else one if base == BASE_CODE else None
        if base_unit is None:
            continue  # no base rate that day, so no cross rate from that table
        for code in codes:
            if code == BASE_CODE:
                nominal, value, unit = 1, "1", one
            elif code in table:
                row = table[code]
                nominal, value, unit = row.nominal, decimal_text(row.value), row.unit_rate
            else:
                continue
            points[code].append(
                {
                    "date": day.isoformat(),
                    "rate": normalized_text(round_rate(cross_rate(unit, base_unit))),
                    "nominal": nominal,
                    "value": value,
                }
            )
    return points


def currencies_payload(currencies: Sequence[CurrencyInfo]) -> dict[str, Any]:
    items = [
        {
            "code": c.code,
            "cbr_id": c.cbr_id,
            "num_code": c.num_code,
            "name_ru": c.name_ru,
            "name_en": c.name_en,
            "nominal": c.nominal,
            "first_date": c.first_date.isoformat() if c.first_date else None,
            "last_date": c.last_date.isoformat() if c.last_date else None,
        }
        for c in currencies
    ]
    return {"count": len(items), "currencies": items}


@dataclass(slots=True)
class Snapshot:
    """What one reload read: the newest tables (newest first) and every known currency."""

    tables: tuple[RateTable, ...]
    currencies: dict[str, CurrencyInfo]
    loaded_at: dt.datetime
    memo: dict[tuple[Any, ...], Encoded] = field(default_factory=dict)
    # Conversions with today's table, by (today, raw query string): the same question asked
    # again is answered with the bytes already encoded.
    conversions: dict[tuple[dt.date, bytes], Encoded] = field(default_factory=dict)

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
        key = ("latest", today, base)
        cached = snapshot.memo.get(key)
        if cached is not None:
            return cached
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
        return self._remember(snapshot, key, encode(payload))

    def currencies(self, snapshot: Snapshot) -> Encoded:
        key = ("currencies",)
        cached = snapshot.memo.get(key)
        if cached is not None:
            return cached
        rub = CurrencyInfo(BASE_CODE, None, RUB_NUM_CODE, *RUB_NAMES, 1, None, None)
        items = sorted([*snapshot.currencies.values(), rub], key=lambda c: c.code)
        return self._remember(snapshot, key, encode(currencies_payload(items)))

    def encoded_conversion(self, snapshot: Snapshot, query: bytes) -> Encoded | None:
        """The answer to a /convert query string already asked with today's table, if any."""
        return snapshot.conversions.get((self.today(), query))

    def remember_conversion(self, snapshot: Snapshot, query: bytes, encoded: Encoded) -> None:
        if len(snapshot.conversions) >= CONVERSIONS_LIMIT:
            snapshot.conversions.clear()
        snapshot.conversions[(self.today(), query)] = encoded

    @staticmethod
    def _remember(snapshot: Snapshot, key: tuple[Any, ...], encoded: Encoded) -> Encoded:
        if len(snapshot.memo) >= MEMO_LIMIT:
            snapshot.memo.clear()
        snapshot.memo[key] = encoded
        return encoded
