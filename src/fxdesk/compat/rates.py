"""Seed-compatible currency and rate routes, /tasks/run and WS /ws/rates, over the rates domain."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, WebSocket
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, TypeAdapter

from fxdesk.auth.dependencies import AdminUser, CurrentUser
from fxdesk.auth.sessions import Authenticated
from fxdesk.caching import Pages, etag_response
from fxdesk.db import Database, DbSession
from fxdesk.deps import DatabaseDep, PageCache
from fxdesk.errors import error_responses
from fxdesk.events.schemas import Channel
from fxdesk.logging import get_logger
from fxdesk.rates.conversions import convert_cbr
from fxdesk.rates.dependencies import Rates
from fxdesk.rates.exceptions import CurrencyNotFound
from fxdesk.rates.manual import service as manual_rates
from fxdesk.rates.manual.schemas import ManualRateIn, ManualRatePatch
from fxdesk.rates.money import decimal_text, parse_amount
from fxdesk.rates.payloads import manual_payload
from fxdesk.rates.tables import list_rate_rows, require_code
from fxdesk.realtime.router import hub_client, receive_loop

_REFUSED = error_responses(401, 403, 422)
currency_router = APIRouter(prefix="/currency", tags=["seed"], responses=_REFUSED)
rates_router = APIRouter(prefix="/rates", tags=["seed"], responses=_REFUSED)
tasks_router = APIRouter(prefix="/tasks", tags=["seed"], responses=_REFUSED)
log = get_logger("fxdesk.compat.rates")

RATE_EVENTS = frozenset({"rate_created", "rate_updated", "rate_deleted"})
RateId = Annotated[int, Query(alias="rate_id", ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


class SeedCurrencies(BaseModel):
    currencies: list[str]


class SeedConvertIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    amount: StrictInt | StrictFloat | StrictStr = Field(examples=[100])
    currency_code1: StrictStr = Field(max_length=16, examples=["USD"])
    currency_code2: StrictStr = Field(max_length=16, examples=["EUR"])


class SeedMessage(BaseModel):
    message: str


class SeedRunOut(BaseModel):
    status: str
    message: str


class SeedRateRow(BaseModel):
    """`value` is the per-unit rate; `manual` tells the admin's rates from CBR's."""

    model_config = ConfigDict(extra="allow")

    id: int
    code: str
    name: str
    value: str
    created_at: Any
    manual: bool


@currency_router.get("/get_currency_codes", response_model=SeedCurrencies)
async def currency_codes(user: CurrentUser, rates: Rates) -> Any:
    snapshot = await rates.cache.current()
    return {"currencies": rates.cache.codes(snapshot)}


@currency_router.post("/convert", response_model=SeedMessage, responses=error_responses(404, 503))
async def seed_convert(body: SeedConvertIn, user: CurrentUser, rates: Rates) -> Any:
    # Echo the amount as the client wrote it; compute with its exact decimal value.
    echoed = repr(body.amount) if isinstance(body.amount, float) else str(body.amount).strip()
    amount = parse_amount(body.amount)
    conversion, _ = await convert_cbr(
        rates.cache, amount, body.currency_code1, body.currency_code2, None
    )
    return {
        "message": f"{echoed} of {conversion.source} is "
        f"{decimal_text(conversion.result)} of {conversion.target}"
    }


@rates_router.get("/get", response_model=list[SeedRateRow])
async def seed_rates(
    request: Request,
    user: CurrentUser,
    database: DatabaseDep,
    pages: PageCache,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    """Rate rows, newest first: manual rates, then CBR's by table date."""
    return await _rate_rows(request, database, pages, limit, offset, None)


@rates_router.get("/get/code", response_model=list[SeedRateRow], responses=error_responses(404))
async def seed_rates_of_code(
    request: Request,
    user: CurrentUser,
    database: DatabaseDep,
    pages: PageCache,
    code: Annotated[str, Query(max_length=16)],
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    """One currency's history, newest first."""
    code = code.strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise CurrencyNotFound()
    return await _rate_rows(request, database, pages, limit, offset, code)


_ROWS = TypeAdapter(list[SeedRateRow])


async def _rate_rows(
    request: Request,
    database: Database,
    pages: Pages,
    limit: int,
    offset: int,
    code: str | None,
) -> Response:
    """A page of rate rows (of one code: 404 if it is unknown), remembered until the next rate
    event (see fxdesk.caching)."""

    async def build() -> list[Any]:
        async with database.session(write=False) as session:
            if code is not None:
                await require_code(session, code)
            rows = await list_rate_rows(session, limit, offset, code=code)
        dumped: list[Any] = _ROWS.dump_python(_ROWS.validate_python(rows), mode="json")
        return dumped

    page = await pages.page(Channel.rates, ("rows", code, limit, offset), build)
    return etag_response(request, page)


@rates_router.post("/create", response_model=SeedRateRow)
async def seed_create(body: ManualRateIn, admin: AdminUser, session: DbSession) -> Any:
    row = await manual_rates.create_manual(session, admin, body.code, body.name, body.value)
    return manual_payload(row)


@rates_router.patch("/update", response_model=SeedRateRow, responses=error_responses(400, 404))
async def seed_update(
    rate_id: RateId, admin: AdminUser, session: DbSession, body: ManualRatePatch | None = None
) -> Any:
    """No body, `null` or `{}` gets the seed's 400, as for /tasks/update_task."""
    body = body or ManualRatePatch()
    row = await manual_rates.update_manual(session, admin, rate_id, body.name, body.value)
    return manual_payload(row)


@rates_router.delete("/delete", status_code=204, responses=error_responses(404))
async def seed_delete(rate_id: RateId, admin: AdminUser, session: DbSession) -> Response:
    await manual_rates.delete_manual(session, admin, rate_id)
    return Response(status_code=204)


@tasks_router.post("/run", response_model=SeedRunOut, responses=error_responses(409, 502, 503))
async def seed_run(admin: AdminUser, rates: Rates) -> Any:
    """Run the fetch job now; the message says how many rows changed."""
    report = await rates.scheduler.run_once("manual")
    report.raise_for_status()
    return {"status": "success", "message": report.message}


def rate_events_only(text: str) -> str | None:
    """The hub's frame, passed on untouched if it is a rate event; anything else is dropped."""
    try:
        event = json.loads(text).get("event")
    except (ValueError, AttributeError):
        return None
    return text if event in RATE_EVENTS else None


async def seed_rates_socket(websocket: WebSocket, auth: Authenticated) -> None:
    async with hub_client(
        websocket, auth, "ws-rates", channels=frozenset({Channel.rates}), transform=rate_events_only
    ) as client:

        async def ignore(_text: str) -> None:
            """The seed's socket only speaks; whatever a client says is not an instruction."""

        await receive_loop(websocket, client, ignore)


routers = (currency_router, rates_router, tasks_router)
