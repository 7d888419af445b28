"""Snapshots of stored rows, shared by the reads and the in-memory cache: rates, tables, currencies.

Plain frozen values, so a table read once can be kept in memory and handed to any request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from fxdesk.rates.models import Currency, Rate
from fxdesk.rates.money import BASE_CODE


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
