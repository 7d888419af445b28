"""Optional APILayer "exchangerates_data" provider for /convert; upstream failures are 502/503."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

import httpx

from fxdesk.errors import ServiceUnavailable
from fxdesk.logging import get_logger
from fxdesk.rates.exceptions import BadGateway
from fxdesk.rates.money import decimal_text

log = get_logger("fxdesk.rates.apilayer")

TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class ApiLayerAnswer:
    rate: Decimal
    result: Decimal
    date: dt.date | None


def _decimal(raw: object, what: str) -> Decimal:
    # JSON numbers were parsed straight into Decimal (parse_float), so no float ever sits here.
    if isinstance(raw, bool) or not isinstance(raw, Decimal | int):
        raise BadGateway(f"APILayer answered without a numeric {what}")
    value = Decimal(raw)
    if not value.is_finite() or value < 0:
        raise BadGateway(f"APILayer answered an invalid {what}")
    return value


async def convert(
    base_url: str,
    api_key: str,
    source: str,
    target: str,
    amount: Decimal,
    on: dt.date | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ApiLayerAnswer:
    params = {"from": source, "to": target, "amount": decimal_text(amount)}
    if on is not None:
        params["date"] = on.isoformat()
    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=TIMEOUT_SECONDS, follow_redirects=True
        ) as client:
            response = await client.get(
                base_url.rstrip("/") + "/convert",
                params=params,
                headers={"apikey": api_key, "Accept": "application/json"},
            )
    except httpx.TimeoutException:
        raise ServiceUnavailable("APILayer did not answer in time") from None
    except httpx.HTTPError as exc:
        log.warning("apilayer_unreachable", error=type(exc).__name__)
        raise ServiceUnavailable("APILayer is unreachable") from None
    status = response.status_code
    if status == 429:
        raise ServiceUnavailable("APILayer rate limit reached; try again later")
    if status >= 500:
        raise BadGateway(f"APILayer failed (HTTP {status})")
    if status in (401, 403):
        raise BadGateway("APILayer refused the configured API key")
    if status >= 400:
        raise BadGateway(f"APILayer rejected the request (HTTP {status})")
    try:
        document = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise BadGateway("APILayer answered with something that is not JSON") from None
    if not isinstance(document, dict) or document.get("success") is not True:
        raise BadGateway("APILayer could not convert this pair")
    info = document.get("info")
    rate = _decimal(info.get("rate") if isinstance(info, dict) else None, "rate")
    result = _decimal(document.get("result"), "result")
    try:
        day = dt.date.fromisoformat(str(document.get("date")))
    except ValueError:
        day = None
    return ApiLayerAnswer(rate=rate, result=result, date=day)
