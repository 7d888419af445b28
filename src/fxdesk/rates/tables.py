"""The stored tables and their reads: a table by date or as of a date, the newest ones, series,
currencies, and the seed's rate rows (manual and official, one list).

CBR dates are Moscow dates; `moscow_today` says which table is in force.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.db import utcnow
from fxdesk.rates.exceptions import CurrencyNotFound
from fxdesk.rates.models import Currency, ManualRate, Rate
from fxdesk.rates.payloads import manual_payload, official_row
from fxdesk.rates.snapshots import CurrencyInfo, RateTable, StoredRate

MOSCOW = ZoneInfo("Europe/Moscow")


def moscow_today(now: dt.datetime | None = None) -> dt.date:
    """CBR dates are Moscow dates: "today" is the Europe/Moscow calendar day."""
    return (now or utcnow()).astimezone(MOSCOW).date()


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


# --- rate rows for the seed listing --------------------------------------------------------


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


async def require_code(session: AsyncSession, code: str) -> None:
    if not await code_exists(session, code):
        raise CurrencyNotFound()
