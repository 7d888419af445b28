"""The rates API's query model and (documented) response shapes; figures are strings.

Manual rates have theirs in `fxdesk.rates.manual.schemas`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from fxdesk.fields import CalendarDate
from fxdesk.rates.money import BASE_CODE


class TableRow(BaseModel):
    code: str
    num_code: str | None
    name: str
    name_en: str
    nominal: int = Field(description="CBR's nominal: `value` is RUB per this many units")
    value: str = Field(description="RUB per `nominal` units, exactly as CBR published it")
    rate: str = Field(description="Units of `base` per one unit, 10 significant digits")
    rate_unrounded: str
    previous_rate: str | None
    source: str


class TableOut(BaseModel):
    date: dt.date = Field(description="The date the CBR table carries (a Moscow date)")
    base: str
    source: str
    previous_date: dt.date | None
    count: int
    rates: list[TableRow]


class LatestOut(TableOut):
    today: dt.date = Field(description="Today in Moscow")
    next: TableOut | None = Field(description="Tomorrow's table when CBR has published it")


class AsOfOut(TableOut):
    requested_date: dt.date


class SeriesPoint(BaseModel):
    date: dt.date
    rate: str
    nominal: int
    value: str


class SeriesOut(BaseModel):
    base: str
    start: dt.date
    end: dt.date
    codes: list[str]
    series: dict[str, list[SeriesPoint]]


class CurrencyOut(BaseModel):
    code: str
    cbr_id: str | None
    num_code: str | None
    name_ru: str
    name_en: str
    nominal: int
    first_date: dt.date | None
    last_date: dt.date | None


class CurrenciesOut(BaseModel):
    count: int
    currencies: list[CurrencyOut]


# The `base` query parameter of the table routes, as a Field here and a Query in the router.
BASE_PARAMETER: dict[str, Any] = {
    "min_length": 3,
    "max_length": 3,
    "pattern": r"^[A-Za-z]{3}$",
    "description": "Express rates in this currency (default RUB)",
}


class LatestQuery(BaseModel):
    """GET /rates/latest's query string (validated in one pass by `parse_query`)."""

    base: str = Field(default=BASE_CODE, **BASE_PARAMETER)


class ConvertQuery(BaseModel):
    """GET /convert's query string (validated in one pass by `parse_query`)."""

    source: str = Field(alias="from", max_length=16, examples=["USD"])
    to: str = Field(max_length=16, examples=["EUR"])
    amount: str = Field(max_length=64, examples=["100"])
    date: CalendarDate | None = None
    provider: Literal["cbr", "apilayer"] = "cbr"


class ConversionOut(BaseModel):
    provider: str
    from_: str = Field(alias="from")
    to: str
    amount: str
    date: dt.date | None = Field(description="Date of the table both legs came from")
    requested_date: dt.date | None
    rate: str = Field(description="Units of `to` per one `from`, 10 significant digits")
    rate_unrounded: str
    result: str = Field(description="Rounded once, to the target's ISO 4217 minor units")
    result_unrounded: str
    minor_units: int


class FetchAttemptOut(BaseModel):
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime
    trigger: str
    source: str
    requested_date: dt.date | None
    outcome: str
    body_hash: str | None
    table_date: dt.date | None
    rows_changed: int
    error: str | None


class StatusOut(BaseModel):
    today: dt.date
    latest_date: dt.date | None
    autostart: bool
    poll_seconds: int
    running: bool
    next_run_at: dt.datetime | None
    attempts: list[FetchAttemptOut]


class RefreshOut(BaseModel):
    status: str
    outcome: str | None
    source: str | None
    table_date: dt.date | None
    rows_changed: int
    message: str
