"""Main API rates routes: currencies, tables, series, convert, refresh, status, and the manual
rates' routes (from `fxdesk.rates.manual.router`) mounted among them.

Every figure is a JSON string; reads carry an ETag and honour If-None-Match.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from fxdesk.auth.dependencies import AdminUser, CurrentUser
from fxdesk.caching import etag_response
from fxdesk.db import DbSession, utcnow
from fxdesk.deps import DatabaseDep, PageCache
from fxdesk.errors import InvalidInput, NotFound, error_responses
from fxdesk.events.models import Lease
from fxdesk.events.schemas import Channel
from fxdesk.fields import CalendarDate
from fxdesk.querystring import parse_query, query_parameters
from fxdesk.rates.conversions import answer_conversion
from fxdesk.rates.dependencies import (
    Rates,
    known_code,
    table_as_of,
)
from fxdesk.rates.fetchlog import recent_fetches
from fxdesk.rates.manual.router import router as manual_router
from fxdesk.rates.money import BASE_CODE
from fxdesk.rates.payloads import series_points, table_payload
from fxdesk.rates.scheduler import LEASE_NAME
from fxdesk.rates.schemas import (
    BASE_PARAMETER,
    AsOfOut,
    ConversionOut,
    ConvertQuery,
    CurrenciesOut,
    LatestOut,
    LatestQuery,
    RefreshOut,
    SeriesOut,
    StatusOut,
)
from fxdesk.rates.tables import load_series

router = APIRouter(tags=["rates"], responses=error_responses(401, 403, 422))
# The reads answer 503 until a first CBR table is stored.
_READ = error_responses(503)

MAX_SERIES_DAYS = 366
DEFAULT_SERIES_DAYS = 30
MAX_SERIES_CODES = 60

Base = Annotated[str, Query(**BASE_PARAMETER)]
ATTEMPT_COLUMNS = (
    "id",
    "started_at",
    "finished_at",
    "trigger",
    "source",
    "requested_date",
    "outcome",
    "body_hash",
    "table_date",
    "rows_changed",
    "error",
)


# Routes are tried in the order they are declared: the hot reads come first.


@router.get(
    "/convert",
    response_model=ConversionOut,
    openapi_extra=query_parameters(ConvertQuery),
    responses=error_responses(404, 503),
)
async def convert(request: Request, user: CurrentUser, rates: Rates) -> Response:
    """amount x unit(from) / unit(to), both from one table; rounded once, at the output."""
    key = rates.cache.answer_key("convert", request.scope["query_string"])
    encoded = rates.cache.answer(await rates.cache.current(), key)
    if encoded is None:
        encoded = await answer_conversion(rates, key, parse_query(ConvertQuery, request))
    return etag_response(request, encoded)


@router.get("/currencies", response_model=CurrenciesOut, responses=_READ)
async def currencies(request: Request, user: CurrentUser, rates: Rates) -> Response:
    """Every currency CBR has published here, plus RUB."""
    snapshot = await rates.cache.current()
    return etag_response(request, rates.cache.currencies(snapshot))


@router.get(
    "/rates/latest",
    response_model=LatestOut,
    responses=_READ,
    openapi_extra=query_parameters(LatestQuery),
)
async def latest(request: Request, user: CurrentUser, rates: Rates) -> Response:
    """The table in force today (Moscow), and `next` when tomorrow's is already published."""
    key = rates.cache.answer_key("latest", request.scope["query_string"])
    snapshot = await rates.cache.current()
    encoded = rates.cache.answer(snapshot, key)
    if encoded is None:
        base = parse_query(LatestQuery, request).base
        known_code(base, rates.cache.codes(snapshot), field="base currency")
        latest = rates.cache.latest(snapshot, base.upper())
        encoded = rates.cache.remember_answer(snapshot, key, latest)
    return etag_response(request, encoded)


@router.get("/rates/series", response_model=SeriesOut, responses=_READ)
async def series(
    request: Request,
    user: CurrentUser,
    rates: Rates,
    database: DatabaseDep,
    pages: PageCache,
    codes: Annotated[str, Query(min_length=3, max_length=400, examples=["USD,EUR"])],
    start: CalendarDate | None = None,
    end: CalendarDate | None = None,
    base: Base = BASE_CODE,
) -> Response:
    """Each code's rate on every table date between `start` and `end` (at most 366 days)."""
    end = end or rates.today()
    start = start or end - dt.timedelta(days=DEFAULT_SERIES_DAYS)
    if start > end:
        raise InvalidInput("start must not be after end")
    if (end - start).days > MAX_SERIES_DAYS:
        raise InvalidInput(f"The range may span at most {MAX_SERIES_DAYS} days")
    snapshot = await rates.cache.current()
    known = sorted({*snapshot.currencies, BASE_CODE})
    wanted: list[str] = []
    for raw in codes.split(","):
        code = known_code(raw, known, field="currency code")
        if code not in wanted:
            wanted.append(code)
    if len(wanted) > MAX_SERIES_CODES:
        raise InvalidInput(f"At most {MAX_SERIES_CODES} codes")
    base = known_code(base, known, field="base currency")

    async def build() -> dict[str, Any]:
        async with database.session(write=False) as session:
            rows = await load_series(session, sorted({*wanted, base}), start, end)
        return {
            "base": base,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "codes": wanted,
            "series": series_points(rows, wanted, base),
        }

    key = ("series", tuple(wanted), start, end, base)  # remembered until the next rate event
    return etag_response(request, await pages.page(Channel.rates, key, build))


@router.get("/rates/status", response_model=StatusOut, responses=_READ)
async def status(user: CurrentUser, rates: Rates, session: DbSession) -> Any:
    """The last fetch attempts, their outcome and the next planned run."""
    attempts = await recent_fetches(session, 20)
    snapshot = await rates.cache.current()
    lease = await session.scalar(select(Lease).where(Lease.name == LEASE_NAME))
    return {
        "today": rates.today(),
        "latest_date": snapshot.tables[0].date if snapshot.tables else None,
        "autostart": rates.settings.rates_autostart,
        "poll_seconds": rates.settings.rates_poll_seconds,
        # Another instance's run shows as a live lease; a dead holder's lease has expired.
        "running": rates.scheduler.running or (lease is not None and lease.expires_at > utcnow()),
        "next_run_at": rates.scheduler.next_run_at,
        "attempts": [
            {column: getattr(row, column) for column in ATTEMPT_COLUMNS} for row in attempts
        ],
    }


@router.post("/rates/refresh", response_model=RefreshOut, responses=error_responses(409, 502, 503))
async def refresh(admin: AdminUser, rates: Rates) -> Any:
    """Run the fetch job now (admin); 409 while another instance fetches, 503 if CBR fails."""
    report = await rates.scheduler.run_once("manual")
    report.raise_for_status()
    return {
        "status": report.status,
        "outcome": report.outcome,
        "source": report.source,
        "table_date": report.table_date,
        "rows_changed": report.rows_changed,
        "message": report.message,
    }


# --- manual rates (their own module; mounted here to keep the order routes are tried in) --

router.include_router(manual_router)


# --- as-of (after the fixed /rates/... paths, which it would otherwise swallow) -------------


@router.get("/rates/{date}", response_model=AsOfOut, responses=error_responses(404, 503))
async def as_of(
    request: Request,
    date: CalendarDate,
    user: CurrentUser,
    rates: Rates,
    pages: PageCache,
    base: Base = BASE_CODE,
) -> Response:
    """The table in force on `date`: the newest one dated on or before it."""

    async def build() -> dict[str, Any]:
        table, previous = await table_as_of(rates.cache, date)
        if table is None:
            raise NotFound(f"No CBR table is stored for {date.isoformat()} or any day before")
        code = known_code(base, table.codes(), field="base currency")
        snapshot = await rates.cache.current()
        return {
            "requested_date": date.isoformat(),
            **table_payload(table, previous, code, snapshot.currencies),
        }

    # remembered until the next rate event; a refusal (404, 422) is not remembered
    return etag_response(request, await pages.page(Channel.rates, ("as_of", date, base), build))
