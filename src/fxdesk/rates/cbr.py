"""Bank of Russia (cbr.ru) client and parsers: daily tables, dynamics, the currency reference."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Literal, NoReturn, Self, TypeVar
from urllib.parse import urlencode

import httpx

from fxdesk.logging import get_logger

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MIRROR_URL",
    "USER_AGENT",
    "CbrClient",
    "CbrCurrency",
    "CbrDynamicPoint",
    "CbrError",
    "CbrRate",
    "CbrTable",
    "english_names",
    "parse_daily",
    "parse_decimal",
    "parse_dynamic",
    "parse_mirror_json",
    "parse_valfull",
    "unit_rate",
]

log = get_logger("fxdesk.rates.cbr")

DEFAULT_BASE_URL = "https://www.cbr.ru/scripts"
DEFAULT_MIRROR_URL = "https://www.cbr-xml-daily.ru/daily_json.js"
USER_AGENT = "fxdesk/0.1 (+rates)"
ACCEPT_XML = "application/xml, text/xml;q=0.9, */*;q=0.1"
ACCEPT_JSON = "application/json, application/javascript;q=0.9, */*;q=0.1"
# Well above the 28 significant digits the conversion rules require, so a unit rate never
# loses a digit of the published Value even for nominals like 1 000 000.
PRECISION = 34

Source = Literal["cbr", "mirror"]
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"\d+")
_CODE = re.compile(r"[A-Z]{3}")
_NUM_CODE = re.compile(r"\d{1,3}")
_CBR_ID = re.compile(r"R\d{5}[A-Z]?")
_DATE = re.compile(r"(\d{2})[./](\d{2})[./](\d{4})")
_XML_DECL_ENCODING = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
# Only ASCII-compatible encodings: that is what makes the byte-level DTD check below sound.
_XML_ENCODINGS = frozenset({"windows-1251", "cp1251", "utf-8", "utf8", "us-ascii", "ascii"})
# CBR's edge (ddos-guard) and overloaded backends answer with these; other 4xx will not heal.
_RETRY_STATUSES = frozenset({403, 408, 425, 429})
_jitter = random.SystemRandom()


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


# --- parsing -------------------------------------------------------------------------------


def parse_decimal(text: str | None, *, field: str = "value") -> Decimal:
    """Exact Decimal from CBR's notation: decimal comma, optional exponent (`5,39256E-05`)."""
    if text is None or not text.strip():
        raise CbrError(f"{field} is missing or empty")
    cleaned = text.strip()
    if not _NUMBER.fullmatch(cleaned):
        raise CbrError(f"{field} is not a number: {cleaned!r}")
    return Decimal(cleaned.replace(",", "."))


def unit_rate(value: Decimal, nominal: int) -> Decimal:
    """RUB per one unit, `value / nominal`, in a local high-precision context."""
    return Context(prec=PRECISION).divide(value, Decimal(nominal))


def _check_published_unit_rate(where: str, computed: Decimal, published: Decimal) -> None:
    # CBR rounds VunitRate to its own number of places (and drops trailing zeros), so allow one
    # unit in its last place: that accepts any rounding mode yet catches a wrong nominal.
    exponent = published.as_tuple().exponent
    if not isinstance(exponent, int):
        raise CbrError(f"{where}: VunitRate is not finite: {published}")
    difference = Context(prec=PRECISION).subtract(computed, published).copy_abs()
    if difference > Decimal(1).scaleb(exponent):
        raise CbrError(f"{where}: VunitRate {published} does not match Value/Nominal = {computed}")


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _snippet(body: bytes) -> str:
    return repr(body[:60])


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _load_xml(body: bytes, what: str) -> ET.Element:
    if not body.strip():
        raise CbrError(f"{what}: empty body")
    if _looks_like_html(body):
        raise CbrError(
            f"{what}: got an HTML page instead of XML (anti-bot challenge or error page): "
            f"{_snippet(body)}"
        )
    if b"\x00" in body:
        raise CbrError(f"{what}: body is not windows-1251 or UTF-8 text")
    declared = _XML_DECL_ENCODING.match(body)
    if declared and declared.group(1).decode("ascii").lower() not in _XML_ENCODINGS:
        raise CbrError(f"{what}: unexpected XML encoding {declared.group(1)!r}")
    # CBR never sends a DTD; refusing one rules out entity expansion and external entities.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise CbrError(f"{what}: XML with a DTD is not accepted")
    try:
        # From bytes, so expat honours the declared windows-1251; DTDs were refused above.
        return ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise CbrError(f"{what}: not well-formed XML ({exc}): {_snippet(body)}") from None


def _require_root(root: ET.Element, tag: str, what: str) -> None:
    if root.tag != tag:
        raise CbrError(f"{what}: root element is <{root.tag}>, expected <{tag}>")


def _text(element: ET.Element, tag: str, where: str) -> str:
    value = element.findtext(tag)
    if value is None or not value.strip():
        raise CbrError(f"{where}: <{tag}> is missing or empty")
    return value.strip()


def _optional_text(element: ET.Element, tag: str) -> str | None:
    value = element.findtext(tag)
    if value is None or not value.strip():
        return None
    return value.strip()


def _parse_date(text: str | None, where: str) -> dt.date:
    match = _DATE.fullmatch((text or "").strip())
    if match is None:
        raise CbrError(f"{where}: date {text!r} is not DD.MM.YYYY")
    day, month, year = (int(part) for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise CbrError(f"{where}: date {text!r} does not exist") from None


def _parse_nominal(text: str | None, where: str) -> int:
    cleaned = (text or "").strip()
    if not _INTEGER.fullmatch(cleaned) or int(cleaned) < 1:
        raise CbrError(f"{where}: nominal {text!r} is not an integer >= 1")
    return int(cleaned)


def _check_cbr_id(cbr_id: str | None, where: str) -> str:
    cleaned = (cbr_id or "").strip()
    if not _CBR_ID.fullmatch(cleaned):
        raise CbrError(f"{where}: CBR id {cbr_id!r} is not like R01235")
    return cleaned


def _check_num_code(num_code: str, where: str) -> str:
    if not _NUM_CODE.fullmatch(num_code):
        raise CbrError(f"{where}: numeric code {num_code!r} is not 1-3 digits")
    # XML_valFull drops leading zeros (36) where XML_daily has them (036); ISO 4217 is 3 digits.
    return num_code.zfill(3)


def _make_rate(
    where: str,
    *,
    code: str,
    cbr_id: str | None,
    num_code: str,
    nominal: int,
    value: Decimal,
    name: str,
    published_unit_rate: Decimal | None = None,
) -> CbrRate:
    if not _CODE.fullmatch(code):
        raise CbrError(f"{where}: currency code {code!r} is not 3 uppercase letters")
    if nominal < 1:
        raise CbrError(f"{where}: nominal {nominal} is not >= 1")
    if not value.is_finite() or value <= 0:
        raise CbrError(f"{where}: value {value} is not > 0")
    if not name:
        raise CbrError(f"{where}: name is empty")
    computed = unit_rate(value, nominal)
    if published_unit_rate is not None:
        _check_published_unit_rate(where, computed, published_unit_rate)
    return CbrRate(
        code=code,
        cbr_id=_check_cbr_id(cbr_id, where),
        num_code=_check_num_code(num_code, where),
        nominal=nominal,
        value=value,
        unit_rate=computed,
        name=name,
    )


def _finish_table(
    what: str, date: dt.date, rates: list[CbrRate], source: Source, body: bytes
) -> CbrTable:
    if not rates:
        raise CbrError(f"{what}: the table for {date.isoformat()} has no rates")
    seen: set[str] = set()
    for rate in rates:
        if rate.code in seen:
            raise CbrError(f"{what}: currency {rate.code} appears twice")
        seen.add(rate.code)
    return CbrTable(date=date, rates=tuple(rates), source=source, body_hash=_body_hash(body))


def parse_daily(body: bytes) -> CbrTable:
    """Parse an XML_daily.asp (or XML_daily_eng.asp) body; raise CbrError unless it is a table."""
    what = "XML_daily"
    root = _load_xml(body, what)
    _require_root(root, "ValCurs", what)
    table_date = _parse_date(root.get("Date"), f"{what} ValCurs")
    rates: list[CbrRate] = []
    for index, element in enumerate(root.findall("Valute")):
        where = f"{what} Valute #{index} ({element.get('ID')})"
        vunit = _optional_text(element, "VunitRate")
        rates.append(
            _make_rate(
                where,
                code=_text(element, "CharCode", where),
                cbr_id=element.get("ID"),
                num_code=_text(element, "NumCode", where),
                nominal=_parse_nominal(_text(element, "Nominal", where), where),
                value=parse_decimal(_text(element, "Value", where), field=f"{where} Value"),
                name=_text(element, "Name", where),
                published_unit_rate=(
                    None if vunit is None else parse_decimal(vunit, field=f"{where} VunitRate")
                ),
            )
        )
    return _finish_table(what, table_date, rates, "cbr", body)


def english_names(body: bytes) -> dict[str, str]:
    """Currency code -> English name from an XML_daily_eng.asp body (validated like a table)."""
    return {rate.code: rate.name for rate in parse_daily(body).rates}


def parse_dynamic(body: bytes) -> list[CbrDynamicPoint]:
    """Parse XML_dynamic.asp, oldest first; an empty list is a range without any fixing."""
    what = "XML_dynamic"
    root = _load_xml(body, what)
    _require_root(root, "ValCurs", what)
    # A daily table also has a ValCurs root; its DateRange attributes tell a series apart.
    first = _parse_date(root.get("DateRange1"), f"{what} ValCurs DateRange1")
    last = _parse_date(root.get("DateRange2"), f"{what} ValCurs DateRange2")
    series_id = root.get("ID")
    points: dict[dt.date, CbrDynamicPoint] = {}
    for index, record in enumerate(root):
        where = f"{what} Record #{index} ({record.get('Date')})"
        if record.tag != "Record":
            raise CbrError(f"{where}: unexpected <{record.tag}> in a dynamic series")
        record_id = record.get("Id")
        if series_id and record_id and record_id != series_id:
            raise CbrError(f"{where}: record of {record_id} in the series of {series_id}")
        day = _parse_date(record.get("Date"), where)
        if day in points:
            raise CbrError(f"{where}: date {day.isoformat()} appears twice")
        if not first <= day <= last:
            raise CbrError(f"{where}: date outside the requested {first} .. {last}")
        nominal = _parse_nominal(_text(record, "Nominal", where), where)
        value = parse_decimal(_text(record, "Value", where), field=f"{where} Value")
        if value <= 0:
            raise CbrError(f"{where}: value {value} is not > 0")
        computed = unit_rate(value, nominal)
        vunit = _optional_text(record, "VunitRate")
        if vunit is not None:
            published = parse_decimal(vunit, field=f"{where} VunitRate")
            _check_published_unit_rate(where, computed, published)
        points[day] = CbrDynamicPoint(date=day, nominal=nominal, value=value, unit_rate=computed)
    return [points[day] for day in sorted(points)]


def parse_valfull(body: bytes) -> list[CbrCurrency]:
    """Parse the XML_valFull.asp currency reference (root `Valuta`, one `Item` per currency)."""
    what = "XML_valFull"
    root = _load_xml(body, what)
    _require_root(root, "Valuta", what)
    currencies: list[CbrCurrency] = []
    seen: set[str] = set()
    for index, item in enumerate(root.findall("Item")):
        where = f"{what} Item #{index} ({item.get('ID')})"
        cbr_id = _check_cbr_id(item.get("ID"), where)
        if cbr_id in seen:
            raise CbrError(f"{where}: id {cbr_id} appears twice")
        seen.add(cbr_id)
        num_code = _optional_text(item, "ISO_Num_Code")
        char_code = _optional_text(item, "ISO_Char_Code")
        if char_code is not None and not _CODE.fullmatch(char_code):
            raise CbrError(f"{where}: ISO code {char_code!r} is not 3 uppercase letters")
        currencies.append(
            CbrCurrency(
                cbr_id=cbr_id,
                name_ru=_text(item, "Name", where),
                name_en=_optional_text(item, "EngName") or "",
                nominal=_parse_nominal(_text(item, "Nominal", where), where),
                # Published right-padded to 10 characters ("R01010    ").
                parent_code=_text(item, "ParentCode", where),
                iso_num_code=None if num_code is None else _check_num_code(num_code, where),
                iso_char_code=char_code,
            )
        )
    if not currencies:
        raise CbrError(f"{what}: no currencies")
    return currencies


def _reject_json_constant(name: str) -> NoReturn:
    raise CbrError(f"daily_json: {name} is not a rate")


def _json_decimal(raw: object, where: str) -> Decimal:
    # bool is an int subclass; `true` as a value would otherwise become 1.
    if isinstance(raw, bool) or not isinstance(raw, Decimal | int | str):
        raise CbrError(f"{where}: {raw!r} is not a number")
    if isinstance(raw, str):
        return parse_decimal(raw, field=where)
    return Decimal(raw)


def _json_str(row: Mapping[str, object], key: str, where: str) -> str:
    raw = row.get(key)
    if not isinstance(raw, str) or not raw.strip():
        raise CbrError(f"{where}: {key} is missing or not a string")
    return raw.strip()


def parse_mirror_json(body: bytes) -> CbrTable:
    """Parse the cbr-xml-daily.ru `daily_json.js` mirror; the table is marked source="mirror"."""
    what = "daily_json"
    if not body.strip():
        raise CbrError(f"{what}: empty body")
    if _looks_like_html(body):
        raise CbrError(f"{what}: got an HTML page instead of JSON: {_snippet(body)}")
    try:
        # Decimal straight from the JSON text: a float would turn 53.9141 into 53.914099999...
        document = json.loads(
            body.decode("utf-8-sig"),
            parse_float=Decimal,
            parse_constant=_reject_json_constant,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise CbrError(f"{what}: not UTF-8 JSON ({exc}): {_snippet(body)}") from None
    if not isinstance(document, dict):
        raise CbrError(f"{what}: top level is not an object")
    raw_date = document.get("Date")
    try:
        table_date = dt.datetime.fromisoformat(str(raw_date)).date()
    except ValueError:
        raise CbrError(f"{what}: Date {raw_date!r} is not ISO 8601") from None
    valute = document.get("Valute")
    if not isinstance(valute, dict):
        raise CbrError(f"{what}: Valute is missing or not an object")
    rates: list[CbrRate] = []
    for key, row in valute.items():
        where = f"{what} Valute[{key!r}]"
        if not isinstance(row, dict):
            raise CbrError(f"{where}: not an object")
        code = _json_str(row, "CharCode", where)
        if code != key:
            raise CbrError(f"{where}: CharCode {code!r} differs from its key")
        nominal = row.get("Nominal")
        if isinstance(nominal, bool) or not isinstance(nominal, int):
            raise CbrError(f"{where}: Nominal {nominal!r} is not an integer")
        rates.append(
            _make_rate(
                where,
                code=code,
                cbr_id=_json_str(row, "ID", where),
                num_code=_json_str(row, "NumCode", where),
                nominal=nominal,
                value=_json_decimal(row.get("Value"), f"{where} Value"),
                name=_json_str(row, "Name", where),
            )
        )
    return _finish_table(what, table_date, rates, "mirror", body)


# --- client --------------------------------------------------------------------------------


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
        if not _CBR_ID.fullmatch(cbr_id):
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
