"""Request plumbing of the rates routes: the runtime, known codes, tables."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Request

from fxdesk.errors import InvalidInput
from fxdesk.rates.cache import RatesCache
from fxdesk.rates.money import parse_code
from fxdesk.rates.runtime import RatesRuntime
from fxdesk.rates.snapshots import RateTable
from fxdesk.rates.tables import load_table_as_of


async def get_rates(request: Request) -> RatesRuntime:
    """Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop that
    cost more than the whole rest of a cached read."""
    runtime: RatesRuntime = request.app.state.rates
    return runtime


Rates = Annotated[RatesRuntime, Depends(get_rates)]


def known_code(raw: str, codes: list[str], *, field: str) -> str:
    code = parse_code(raw, field=field)
    if code not in codes:
        raise InvalidInput(f"Unknown {field}: {code} (see /api/v1/currencies)")
    return code


async def table_as_of(cache: RatesCache, on: dt.date) -> tuple[RateTable | None, RateTable | None]:
    """(table in force on `on`, the one before it): from memory when the window covers `on`;
    a read session is opened only when it does not."""
    snapshot = await cache.current()
    hit = cache.window_as_of(snapshot, on)
    if hit is not None:
        return hit
    async with cache.database.session(write=False) as session:
        table = await load_table_as_of(session, on)
        if table is None:
            return None, None
        previous = await load_table_as_of(session, table.date - dt.timedelta(days=1))
    return table, previous
