"""Ingestion: storing a fetched CBR table (new dates, corrections, the mirror filling gaps) and
the rate events it emits.

Ingesting writes and announces only what changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.db import utcnow
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import EventType
from fxdesk.rates.cbr.records import CbrTable
from fxdesk.rates.models import Currency, Rate, RateRevision
from fxdesk.rates.money import decimal_text
from fxdesk.rates.payloads import official_payload

# What a fetch came to; "failed" only ever reaches the fetch log, never an IngestResult.
Outcome = Literal["published", "history", "corrected", "unchanged", "failed"]


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
