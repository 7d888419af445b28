"""The cbr.ru HTTP client: fetching with retries, backoff and jitter, the JSON mirror as fallback.

Bodies are read as bytes and handed to the parsers, which deal with their encodings
(windows-1251 XML, UTF-8 JSON); a body that does not parse counts as a failed attempt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Self, TypeVar
from urllib.parse import urlencode

import httpx

from fxdesk.logging import get_logger
from fxdesk.rates.cbr.daily import english_names, parse_daily
from fxdesk.rates.cbr.dynamic import parse_dynamic
from fxdesk.rates.cbr.fields import CBR_ID
from fxdesk.rates.cbr.mirror import parse_mirror_json
from fxdesk.rates.cbr.records import CbrCurrency, CbrDynamicPoint, CbrError, CbrTable
from fxdesk.rates.cbr.valfull import parse_valfull

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MIRROR_URL", "USER_AGENT", "CbrClient"]

log = get_logger("fxdesk.rates.cbr")

DEFAULT_BASE_URL = "https://www.cbr.ru/scripts"
DEFAULT_MIRROR_URL = "https://www.cbr-xml-daily.ru/daily_json.js"
USER_AGENT = "fxdesk/0.1 (+rates)"
ACCEPT_XML = "application/xml, text/xml;q=0.9, */*;q=0.1"
ACCEPT_JSON = "application/json, application/javascript;q=0.9, */*;q=0.1"

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# CBR's edge (ddos-guard) and overloaded backends answer with these; other 4xx will not heal.
_RETRY_STATUSES = frozenset({403, 408, 425, 429})
_jitter = random.SystemRandom()


def _cbr_date(day: dt.date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    return float(raw) if raw.isdigit() else None


class CbrClient:
    """Async client for cbr.ru with retries, backoff and jitter, and the JSON mirror as fallback.

    `retries` is the number of extra attempts after the first one. Every failure surfaces as
    CbrError once the attempts are used up; an invalid body counts as a failure and is retried,
    because CBR's anti-bot edge sometimes answers 200 with an HTML challenge.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        mirror_url: str = DEFAULT_MIRROR_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        user_agent: str = USER_AGENT,
        max_body_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.mirror_url = mirror_url
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_body_bytes = max_body_bytes
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            headers={"User-Agent": user_agent},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def daily(self, on: dt.date | None = None) -> CbrTable:
        """The table in force on `on` (latest if None); its date is the one CBR puts on it."""
        return await self._fetch(self._daily_url("XML_daily.asp", on), parse_daily, ACCEPT_XML)

    async def daily_english(self, on: dt.date | None = None) -> dict[str, str]:
        url = self._daily_url("XML_daily_eng.asp", on)
        return await self._fetch(url, english_names, ACCEPT_XML)

    async def dynamic(self, cbr_id: str, start: dt.date, end: dt.date) -> list[CbrDynamicPoint]:
        """One currency's fixings between two dates, inclusive; only days a new rate took effect."""
        if not CBR_ID.fullmatch(cbr_id):
            raise ValueError(f"CBR id {cbr_id!r} is not like R01235")
        if start > end:
            raise ValueError("start is after end")
        params = {
            "date_req1": _cbr_date(start),
            "date_req2": _cbr_date(end),
            "VAL_NM_RQ": cbr_id,
        }
        return await self._fetch(self._url("XML_dynamic.asp", params), parse_dynamic, ACCEPT_XML)

    async def currencies(self, daily_only: bool = False) -> list[CbrCurrency]:
        """The currency reference: d=0 lists daily-set currencies, d=1 the monthly-set ones.

        With `daily_only` only d=0 is fetched; otherwise both lists, daily ones first and an id
        present in both kept once.
        """
        daily = await self._fetch(
            self._url("XML_valFull.asp", {"d": "0"}), parse_valfull, ACCEPT_XML
        )
        if daily_only:
            return daily
        monthly = await self._fetch(
            self._url("XML_valFull.asp", {"d": "1"}), parse_valfull, ACCEPT_XML
        )
        known = {currency.cbr_id for currency in daily}
        return daily + [currency for currency in monthly if currency.cbr_id not in known]

    async def mirror_daily(self, on: dt.date | None = None) -> CbrTable:
        """The mirror's latest table, or its archive copy for a date CBR published one."""
        url = self.mirror_url
        if on is not None:
            root = self.mirror_url.rsplit("/", 1)[0]
            url = f"{root}/archive/{on.year:04d}/{on.month:02d}/{on.day:02d}/daily_json.js"
        return await self._fetch(url, parse_mirror_json, ACCEPT_JSON)

    async def latest_with_fallback(self, on: dt.date | None = None) -> CbrTable:
        """cbr.ru first; only when it keeps failing, the mirror (rows marked source="mirror")."""
        try:
            return await self.daily(on)
        except CbrError as primary:
            log.warning(
                "cbr_fallback_mirror",
                error=str(primary),
                on=None if on is None else on.isoformat(),
            )
            try:
                return await self.mirror_daily(on)
            except CbrError as secondary:
                raise CbrError(
                    f"cbr.ru failed ({primary}); the mirror failed too ({secondary})",
                    url=secondary.url,
                    status=secondary.status,
                ) from secondary

    def _url(self, path: str, params: Mapping[str, str]) -> str:
        # CBR documents literal slashes in date_req; httpx's own params would send %2F.
        query = urlencode(params, safe="/")
        return f"{self.base_url}/{path}" + (f"?{query}" if query else "")

    def _daily_url(self, path: str, on: dt.date | None) -> str:
        return self._url(path, {} if on is None else {"date_req": _cbr_date(on)})

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        # Half fixed, half random: spreads instances out without ever retrying instantly.
        delay = ceiling / 2 + _jitter.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff))
        return delay

    async def _fetch(self, url: str, parse: Callable[[bytes], T], accept: str) -> T:
        attempts = self.retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                return parse(await self._get(url, accept))
            except CbrError as exc:
                if not exc.retryable or attempt >= attempts:
                    raise CbrError(
                        f"{url}: failed after {attempt} attempt(s): {exc}",
                        url=url,
                        status=exc.status,
                        retryable=exc.retryable,
                    ) from exc
                delay = self._delay(attempt, exc.retry_after)
                log.warning(
                    "cbr_retry",
                    url=url,
                    attempt=attempt,
                    status=exc.status,
                    error=str(exc),
                    delay=round(delay, 3),
                )
                await self._sleep(delay)

    async def _get(self, url: str, accept: str) -> bytes:
        try:
            async with self._http.stream("GET", url, headers={"Accept": accept}) as response:
                status = response.status_code
                if status >= 400:
                    raise CbrError(
                        f"HTTP {status}",
                        url=url,
                        status=status,
                        retryable=status >= 500 or status in _RETRY_STATUSES,
                        retry_after=_retry_after(response),
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise CbrError(
                            f"body larger than {self.max_body_bytes} bytes",
                            url=url,
                            status=status,
                            retryable=False,
                        )
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise CbrError(f"network error: {type(exc).__name__}: {exc}", url=url) from exc
        body = b"".join(chunks)
        log.debug("cbr_fetched", url=url, status=status, bytes=len(body))
        return body
