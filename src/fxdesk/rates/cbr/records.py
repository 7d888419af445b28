"""What the CBR parsers return: tables, rows, dynamics points, reference items, and CbrError."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

__all__ = ["CbrCurrency", "CbrDynamicPoint", "CbrError", "CbrRate", "CbrTable", "Source"]

Source = Literal["cbr", "mirror"]


class CbrError(Exception):
    """cbr.ru or the mirror failed: bad status, network error, or a body that is not a table."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class CbrRate:
    """One currency row of a daily table; `value` is RUB per `nominal` units, as published."""

    code: str
    cbr_id: str
    num_code: str
    nominal: int
    value: Decimal
    unit_rate: Decimal
    name: str


@dataclass(frozen=True, slots=True)
class CbrTable:
    """A daily table; `date` is the ValCurs Date it carries, never the date it was fetched."""

    date: dt.date
    rates: tuple[CbrRate, ...]
    source: Source
    body_hash: str

    def by_code(self) -> dict[str, CbrRate]:
        return {rate.code: rate for rate in self.rates}


@dataclass(frozen=True, slots=True)
class CbrCurrency:
    """One XML_valFull item; ISO fields are None for the defunct items that have none."""

    cbr_id: str
    name_ru: str
    name_en: str
    nominal: int
    parent_code: str
    iso_num_code: str | None
    iso_char_code: str | None


@dataclass(frozen=True, slots=True)
class CbrDynamicPoint:
    """One XML_dynamic record; the nominal may change between records, the unit rate is smooth."""

    date: dt.date
    nominal: int
    value: Decimal
    unit_rate: Decimal
