"""Rates domain logic: ingesting CBR tables, as-of reads, series, manual rates, the fetch log.

Ingesting writes and announces only what changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.db import utcnow
from fxdesk.errors import BadRequest
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import EventType
from fxdesk.rates.cbr import CbrTable
from fxdesk.rates.conversion import BASE_CODE, decimal_text, normalized_text
from fxdesk.rates.exceptions import CurrencyNotFound, RateNotFound
from fxdesk.rates.models import Currency, FetchLog, ManualRate, Rate, RateRevision
from fxdesk.users.models import User

MOSCOW = ZoneInfo("Europe/Moscow")
FETCH_LOG_KEEP = dt.timedelta(days=90)

Outcome = Literal["published", "history", "corrected", "unchanged", "failed"]


def moscow_today(now: dt.datetime | None = None) -> dt.date:
    """CBR dates are Moscow dates: "today" is the Europe/Moscow calendar day."""
    return (now or utcnow()).astimezone(MOSCOW).date()


# --- snapshots shared with the in-memory cache ---------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredRate:
    id: int
    code: str
    name: str
    nominal: int
    value: Decimal
    unit_rate: Decimal
    source: str
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Rate) -> StoredRate:
        return cls(
            id=row.id,
            code=row.code,
            name=row.name,
            nominal=row.nominal,
            value=row.value,
            unit_rate=row.unit_rate,
            source=row.source,
            created_at=row.created_at,
        )


@dataclass(frozen=True, slots=True)
class RateTable:
    """One stored CBR table, by currency code; RUB is implicit (unit rate 1)."""

    date: dt.date
    rates: Mapping[str, StoredRate]

    @property
    def source(self) -> str:
        sources = {rate.source for rate in self.rates.values()}
        return "cbr" if sources == {"cbr"} else "mirror" if sources == {"mirror"} else "mixed"

    def unit(self, code: str) -> Decimal | None:
        if code == BASE_CODE:
            return Decimal(1)
        rate = self.rates.get(code)
        return None if rate is None else rate.unit_rate

    def codes(self) -> list[str]:
        return sorted({*self.rates, BASE_CODE})


@dataclass(frozen=True, slots=True)
class CurrencyInfo:
    code: str
    cbr_id: str | None
    num_code: str | None
    name_ru: str
    name_en: str
    nominal: int
    first_date: dt.date | None
    last_date: dt.date | None

    @classmethod
    def of(cls, row: Currency) -> CurrencyInfo:
        return cls(
            code=row.code,
            cbr_id=row.cbr_id,
            num_code=row.num_code,
            name_ru=row.name_ru,
            name_en=row.name_en,
            nominal=row.nominal,
            first_date=row.first_date,
            last_date=row.last_date,
        )


def _table(day: dt.date, rows: Iterable[Rate]) -> RateTable:
    return RateTable(date=day, rates={row.code: StoredRate.of(row) for row in rows})


async def load_table(session: AsyncSession, day: dt.date) -> RateTable | None:
    rows = list(await session.scalars(select(Rate).where(Rate.date == day)))
    return _table(day, rows) if rows else None


async def has_table(session: AsyncSession, day: dt.date) -> bool:
    return await session.scalar(select(Rate.id).where(Rate.date == day).limit(1)) is not None


async def table_date_as_of(session: AsyncSession, on: dt.date) -> dt.date | None:
    """The newest table date on or before `on`: weekends and holidays resolve to the last one."""
    return await session.scalar(select(func.max(Rate.date)).where(Rate.date <= on))


async def load_table_as_of(session: AsyncSession, on: dt.date) -> RateTable | None:
    day = await table_date_as_of(session, on)
    return None if day is None else await load_table(session, day)


async def load_newest_tables(session: AsyncSession, count: int) -> list[RateTable]:
    """The `count` newest tables, newest first."""
    days = list(
        await session.scalars(
            select(Rate.date).group_by(Rate.date).order_by(Rate.date.desc()).limit(count)
        )
    )
    if not days:
        return []
    rows = await session.scalars(select(Rate).where(Rate.date.in_(days)))
    by_day: dict[dt.date, list[Rate]] = {day: [] for day in days}
    for row in rows:
        by_day[row.date].append(row)
    return [_table(day, by_day[day]) for day in days]


async def load_currencies(session: AsyncSession) -> list[CurrencyInfo]:
    rows = await session.scalars(select(Currency).order_by(Currency.code))
    return [CurrencyInfo.of(row) for row in rows]


async def load_series(
    session: AsyncSession, codes: Sequence[str], start: dt.date, end: dt.date
) -> list[Rate]:
    """Every stored row of `codes` between two dates, inclusive, oldest first."""
    return list(
        await session.scalars(
            select(Rate)
            .where(Rate.code.in_(codes), Rate.date >= start, Rate.date <= end)
            .order_by(Rate.date, Rate.code)
        )
    )


# --- ingesting a CBR table -----------------------------------------------------------------


@dataclass(slots=True)
class IngestResult:
    table_date: dt.date
    source: str
    outcome: Outcome
    inserted: int = 0
    corrected: int = 0
    events: int = 0
    changed_codes: list[str] = field(default_factory=list)

    @property
    def rows_changed(self) -> int:
        return self.inserted + self.corrected


def official_payload(row: Rate, previous: Decimal | None, *, correction: bool) -> dict[str, Any]:
    """A rate event: the seed's fields at top level (`value` = per-unit rate), then ours."""
    return {
        "id": row.id,
        "code": row.code,
        "name": row.name,
        "value": decimal_text(row.unit_rate),
        "created_at": row.created_at,
        "date": row.date.isoformat(),
        "nominal": row.nominal,
        "published_value": decimal_text(row.value),
        "previous_value": None if previous is None else decimal_text(previous),
        "source": row.source,
        "manual": False,
        "correction": correction,
    }


async def _latest_before(
    session: AsyncSession, codes: Iterable[str], day: dt.date
) -> dict[str, Rate]:
    """For each code, its newest stored row dated before `day` (not necessarily the same day)."""
    newest = (
        select(Rate.code, func.max(Rate.date).label("date"))
        .where(Rate.code.in_(list(codes)), Rate.date < day)
        .group_by(Rate.code)
        .subquery()
    )
    rows = await session.scalars(
        select(Rate).join(newest, (Rate.code == newest.c.code) & (Rate.date == newest.c.date))
    )
    return {row.code: row for row in rows}


def _touch_currency(
    currencies: dict[str, Currency],
    session: AsyncSession,
    table: CbrTable,
    names_en: Mapping[str, str],
) -> set[str]:
    """Create or refresh each currency of `table`; returns the codes seen for the first time."""
    first_seen: set[str] = set()
    for rate in table.rates:
        currency = currencies.get(rate.code)
        if currency is None:
            currency = Currency(
                code=rate.code,
                cbr_id=rate.cbr_id,
                num_code=rate.num_code,
                name_ru=rate.name,
                name_en=names_en.get(rate.code, ""),
                nominal=rate.nominal,
                first_date=table.date,
                last_date=table.date,
            )
            session.add(currency)
            currencies[rate.code] = currency
            first_seen.add(rate.code)
            continue
        if table.date >= currency.last_date:
            # The newest table describes the currency as it is now (nominal, name, id).
            currency.last_date = table.date
            currency.nominal = rate.nominal
            currency.name_ru = rate.name
            currency.cbr_id = rate.cbr_id
            currency.num_code = rate.num_code
        currency.first_date = min(currency.first_date, table.date)
        if rate.code in names_en and names_en[rate.code] != currency.name_en:
            currency.name_en = names_en[rate.code]
    return first_seen


async def ingest_table(
    session: AsyncSession, table: CbrTable, names_en: Mapping[str, str] | None = None
) -> IngestResult:
    """Store what `table` changes and announce it; a table already stored writes nothing.

    A new date inserts the table. When it is the newest table stored, one `rates_published`
    is emitted plus a `rate_updated` per currency whose per-unit rate moved since its previous
    table (`rate_created` for a currency never seen before); an older date (a backfill, or a
    mirror serving yesterday's table) is history and stays quiet. A known date with different
    figures is a correction: the old row goes to `rate_revisions` and `rate_updated` is emitted.
    """
    names_en = names_en or {}
    codes = [rate.code for rate in table.rates]
    newest_before = await session.scalar(select(func.max(Rate.date)))
    existing = {
        row.code: row for row in await session.scalars(select(Rate).where(Rate.date == table.date))
    }
    currencies = {
        row.code: row
        for row in await session.scalars(select(Currency).where(Currency.code.in_(codes)))
    }
    first_seen = _touch_currency(currencies, session, table, names_en)
    await session.flush()  # currencies first: rate rows reference them
    is_new_date = not existing
    announce = newest_before is None or table.date >= newest_before
    result = IngestResult(table.date, table.source, "unchanged")
    inserted: list[Rate] = []
    corrected: list[tuple[Rate, Decimal]] = []
    now = utcnow()
    for rate in table.rates:
        row = existing.get(rate.code)
        if row is None:
            row = Rate(
                code=rate.code,
                date=table.date,
                nominal=rate.nominal,
                value=rate.value,
                unit_rate=rate.unit_rate,
                name=rate.name,
                source=table.source,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            inserted.append(row)
        elif row.value != rate.value or row.nominal != rate.nominal:  # Decimal equality
            if table.source == "mirror" and row.source == "cbr":
                continue  # the mirror may fill a gap, never overrule cbr.ru itself
            session.add(
                RateRevision(
                    rate_id=row.id,
                    code=row.code,
                    date=row.date,
                    nominal=row.nominal,
                    value=row.value,
                    unit_rate=row.unit_rate,
                    source=row.source,
                    replaced_at=now,
                )
            )
            corrected.append((row, row.unit_rate))
            row.nominal = rate.nominal
            row.value = rate.value
            row.unit_rate = rate.unit_rate
            row.name = rate.name
            row.source = table.source
            row.updated_at = now
        elif row.source == "mirror" and table.source == "cbr":
            row.source = "cbr"  # cbr.ru confirmed the mirror's figures: same values, no event
    await session.flush()
    result.inserted, result.corrected = len(inserted), len(corrected)
    if not inserted and not corrected:
        return result

    previous = await _latest_before(session, [row.code for row in inserted], table.date)
    changes: list[tuple[Rate, Decimal | None]] = []
    for row in inserted:
        earlier = previous.get(row.code)
        if earlier is None or earlier.unit_rate != row.unit_rate:
            changes.append((row, None if earlier is None else earlier.unit_rate))
    result.changed_codes = sorted(
        {row.code for row, _ in changes} | {row.code for row, _ in corrected}
    )

    if is_new_date:
        result.outcome = "published" if announce else "history"
    else:
        result.outcome = "corrected"
    if is_new_date and announce:
        await add_event(
            session,
            EventType.rates_published,
            {
                "date": table.date.isoformat(),
                "count": len(table.rates),
                "source": table.source,
                "previous_date": None if newest_before is None else newest_before.isoformat(),
                "changes": [
                    {
                        "code": row.code,
                        "value": decimal_text(row.unit_rate),
                        "previous_value": None if before is None else decimal_text(before),
                    }
                    for row, before in changes
                ],
            },
        )
        result.events += 1
    if announce or not is_new_date:
        for row, before in changes:
            kind = EventType.rate_created if row.code in first_seen else EventType.rate_updated
            await add_event(session, kind, official_payload(row, before, correction=False))
            result.events += 1
        for row, old_unit in corrected:
            payload = official_payload(row, old_unit, correction=True)
            await add_event(session, EventType.rate_updated, payload)
            result.events += 1
    return result


# --- the fetch log -------------------------------------------------------------------------


async def record_fetch(
    session: AsyncSession,
    *,
    started_at: dt.datetime,
    trigger: str,
    source: str,
    outcome: Outcome,
    requested_date: dt.date | None = None,
    body_hash: str | None = None,
    table_date: dt.date | None = None,
    rows_changed: int = 0,
    error: str | None = None,
) -> FetchLog:
    row = FetchLog(
        started_at=started_at,
        finished_at=utcnow(),
        trigger=trigger,
        source=source,
        requested_date=requested_date,
        outcome=outcome,
        body_hash=body_hash,
        table_date=table_date,
        rows_changed=rows_changed,
        error=None if error is None else error[:2000],
    )
    session.add(row)
    await session.flush()
    return row


async def recent_fetches(session: AsyncSession, limit: int) -> list[FetchLog]:
    return list(await session.scalars(select(FetchLog).order_by(FetchLog.id.desc()).limit(limit)))


async def fetched_since(session: AsyncSession, since: dt.datetime) -> bool:
    """Whether a fetch of the newest table got an answer (any outcome but failed) since then."""
    found = await session.scalar(
        select(FetchLog.id)
        .where(
            FetchLog.started_at >= since,
            FetchLog.outcome != "failed",
            FetchLog.requested_date.is_(None),
        )
        .limit(1)
    )
    return found is not None


async def prune_fetch_log(session: AsyncSession, now: dt.datetime | None = None) -> None:
    cutoff = (now or utcnow()) - FETCH_LOG_KEEP
    await session.execute(delete(FetchLog).where(FetchLog.started_at < cutoff))


async def covered_days(session: AsyncSession, start: dt.date, end: dt.date) -> set[dt.date]:
    """Days a backfill need not ask about: a table carries that date, or a successful backfill
    request for that day already resolved it (a weekend answered with Friday's table)."""
    tables = await session.scalars(
        select(Rate.date).where(Rate.date >= start, Rate.date <= end).group_by(Rate.date)
    )
    asked = await session.scalars(
        select(FetchLog.requested_date)
        .where(
            FetchLog.trigger == "backfill",
            FetchLog.outcome != "failed",
            FetchLog.requested_date >= start,
            FetchLog.requested_date <= end,
        )
        .group_by(FetchLog.requested_date)
    )
    return {*tables, *(day for day in asked if day is not None)}


# --- rate rows for the seed listing --------------------------------------------------------


def manual_payload(row: ManualRate) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "name": row.name,
        "value": decimal_text(row.value),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "created_by": row.created_by,
        "manual": True,
    }


def official_row(row: Rate) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "name": row.name,
        "value": normalized_text(row.unit_rate),
        "created_at": row.created_at,
        "date": row.date.isoformat(),
        "nominal": row.nominal,
        "published_value": decimal_text(row.value),
        "source": row.source,
        "manual": False,
    }


async def list_rate_rows(
    session: AsyncSession, limit: int, offset: int, code: str | None = None
) -> list[dict[str, Any]]:
    """Manual rates first (newest first), then official rows by table date, newest first.

    Two ordered reads stitched together keep limit/offset exact without a UNION across tables
    whose columns differ.
    """
    manual_filter = [] if code is None else [ManualRate.code == code]
    manual_count = await session.scalar(
        select(func.count()).select_from(ManualRate).where(*manual_filter)
    )
    rows: list[dict[str, Any]] = []
    if offset < (manual_count or 0):
        manual = await session.scalars(
            select(ManualRate)
            .where(*manual_filter)
            .order_by(ManualRate.created_at.desc(), ManualRate.id.desc())
            .offset(offset)
            .limit(limit)
        )
        rows.extend(manual_payload(row) for row in manual)
    remaining = limit - len(rows)
    if remaining > 0:
        official_filter = [] if code is None else [Rate.code == code]
        # Deep pages: OFFSET steps over the (date, code) index alone, which covers the order;
        # only the page's own rows are then read from the table.
        page_ids = (
            select(Rate.id)
            .where(*official_filter)
            .order_by(Rate.date.desc(), Rate.code)
            .offset(max(0, offset - (manual_count or 0)))
            .limit(remaining)
        )
        official = await session.scalars(
            select(Rate).where(Rate.id.in_(page_ids)).order_by(Rate.date.desc(), Rate.code)
        )
        rows.extend(official_row(row) for row in official)
    return rows


async def code_exists(session: AsyncSession, code: str) -> bool:
    if await session.get(Currency, code) is not None:
        return True
    return bool(await session.scalar(select(ManualRate.id).where(ManualRate.code == code).limit(1)))


# --- manual rates --------------------------------------------------------------------------


async def list_manual(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[ManualRate], int]:
    total = await session.scalar(select(func.count()).select_from(ManualRate))
    rows = await session.scalars(
        select(ManualRate).order_by(ManualRate.id.desc()).offset(offset).limit(limit)
    )
    return list(rows), total or 0


async def create_manual(
    session: AsyncSession, actor: User, code: str, name: str, value: Decimal
) -> ManualRate:
    now = utcnow()
    row = ManualRate(
        code=code, name=name, value=value, created_by=actor.id, created_at=now, updated_at=now
    )
    session.add(row)
    await session.flush()
    await add_event(session, EventType.rate_created, manual_payload(row), actor=actor)
    return row


async def get_manual(session: AsyncSession, rate_id: int) -> ManualRate:
    row = await session.get(ManualRate, rate_id)
    if row is None:
        raise RateNotFound()
    return row


async def update_manual(
    session: AsyncSession,
    actor: User,
    rate_id: int,
    name: str | None = None,
    value: Decimal | None = None,
) -> ManualRate:
    """Apply the given fields; nothing changes (and nothing is announced) if they are the same."""
    if name is None and value is None:
        raise BadRequest("You must provide at least one parameter")
    row = await get_manual(session, rate_id)
    changed = False
    if name is not None and name != row.name:
        row.name, changed = name, True
    if value is not None and value != row.value:  # Decimal equality: 1.50 == 1.5
        row.value, changed = value, True
    if changed:
        row.updated_at = utcnow()
        await session.flush()
        await add_event(session, EventType.rate_updated, manual_payload(row), actor=actor)
    return row


async def delete_manual(session: AsyncSession, actor: User, rate_id: int) -> ManualRate:
    row = await get_manual(session, rate_id)
    payload = manual_payload(row)
    await session.delete(row)
    await session.flush()
    await add_event(session, EventType.rate_deleted, payload, actor=actor)
    return row


async def require_code(session: AsyncSession, code: str) -> None:
    if not await code_exists(session, code):
        raise CurrencyNotFound()
