"""Answering a conversion question (GET /convert, the seed's POST /currency/convert).

Both legs come from one CBR table (memory for today, as-of otherwise), or from APILayer; the
arithmetic itself is in `fxdesk.rates.money`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from fxdesk.caching import Encoded, encode
from fxdesk.errors import InvalidInput
from fxdesk.rates import apilayer
from fxdesk.rates.cache import AnswerKey, RatesCache
from fxdesk.rates.dependencies import known_code, table_as_of
from fxdesk.rates.exceptions import NoRatesYet
from fxdesk.rates.money import (
    Conversion,
    convert,
    decimal_text,
    minor_units,
    normalized_text,
    parse_amount,
    round_amount,
    round_rate,
)
from fxdesk.rates.runtime import RatesRuntime
from fxdesk.rates.schemas import ConvertQuery


async def convert_cbr(
    cache: RatesCache,
    amount: Decimal,
    source: str,
    target: str,
    on: dt.date | None,
) -> tuple[Conversion, dt.date]:
    """Convert with the table in force today (from memory) or on `on`; returns its date too."""
    if on is None:
        snapshot = await cache.current()
        table, _, _ = cache.in_force(snapshot, cache.today())
        if table is None:
            raise NoRatesYet()
    else:
        table, _ = await table_as_of(cache, on)
        if table is None:
            raise InvalidInput(f"No CBR table is stored for {on.isoformat()} or any day before")
    codes = table.codes()
    source = known_code(source, codes, field="source currency")
    target = known_code(target, codes, field="target currency")
    unit_from, unit_to = table.unit(source), table.unit(target)
    assert unit_from is not None and unit_to is not None
    return convert(amount, source, target, unit_from, unit_to), table.date


async def answer_conversion(rates: RatesRuntime, key: AnswerKey, query: ConvertQuery) -> Encoded:
    """GET /convert's encoded answer to `query`; remembered per table when today's answered it,
    so the same query string is answered again from memory."""
    snapshot = await rates.cache.current()
    amount = parse_amount(query.amount)
    payload = await conversion_payload(
        rates, amount, query.source, query.to, query.date, query.provider
    )
    encoded = encode(payload)
    if query.date is None and query.provider == "cbr":
        rates.cache.remember_answer(snapshot, key, encoded)
    return encoded


async def conversion_payload(
    rates: RatesRuntime,
    amount: Decimal,
    source: str,
    target: str,
    on: dt.date | None,
    provider: str,
) -> dict[str, Any]:
    if provider == "apilayer":
        key = rates.settings.apilayer_api_key
        if not key:
            raise InvalidInput("provider=apilayer is not configured on this server (use cbr)")
        # Same validation as the CBR path: codes must be ones this desk knows.
        snapshot = await rates.cache.current()
        codes = rates.cache.codes(snapshot)
        source = known_code(source, codes, field="source currency")
        target = known_code(target, codes, field="target currency")
        answer = await apilayer.convert(
            rates.settings.apilayer_base_url,
            key,
            source,
            target,
            amount,
            on,
            transport=rates.apilayer_transport,
        )
        return {
            "provider": "apilayer",
            "from": source,
            "to": target,
            "amount": decimal_text(amount),
            "date": None if answer.date is None else answer.date.isoformat(),
            "requested_date": None if on is None else on.isoformat(),
            "rate": normalized_text(round_rate(answer.rate)),
            "rate_unrounded": decimal_text(answer.rate),
            "result": decimal_text(round_amount(answer.result, target)),
            "result_unrounded": decimal_text(answer.result),
            "minor_units": minor_units(target),
        }
    conversion, table_date = await convert_cbr(rates.cache, amount, source, target, on)
    return {
        "provider": "cbr",
        "from": conversion.source,
        "to": conversion.target,
        "amount": decimal_text(amount),
        "date": table_date.isoformat(),
        "requested_date": None if on is None else on.isoformat(),
        "rate": normalized_text(conversion.rate),
        "rate_unrounded": normalized_text(conversion.rate_exact),
        "result": decimal_text(conversion.result),
        "result_unrounded": normalized_text(conversion.result_exact),
        "minor_units": minor_units(conversion.target),
    }
