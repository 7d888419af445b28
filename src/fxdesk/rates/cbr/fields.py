"""What every CBR parser shares: numbers, dates, codes, XML loading, and building checked rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import xml.etree.ElementTree as ET
from decimal import Context, Decimal

from fxdesk.rates.cbr.records import CbrError, CbrRate, CbrTable, Source

__all__ = [
    "CBR_ID",
    "CODE",
    "PRECISION",
    "check_cbr_id",
    "check_num_code",
    "check_published_unit_rate",
    "finish_table",
    "load_xml",
    "looks_like_html",
    "make_rate",
    "optional_text",
    "parse_date",
    "parse_decimal",
    "parse_nominal",
    "require_root",
    "required_text",
    "snippet",
    "unit_rate",
]

# Well above the 28 significant digits the conversion rules require, so a unit rate never
# loses a digit of the published Value even for nominals like 1 000 000.
PRECISION = 34

_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"\d+")
CODE = re.compile(r"[A-Z]{3}")
_NUM_CODE = re.compile(r"\d{1,3}")
CBR_ID = re.compile(r"R\d{5}[A-Z]?")
_DATE = re.compile(r"(\d{2})[./](\d{2})[./](\d{4})")
_XML_DECL_ENCODING = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
# Only ASCII-compatible encodings: that is what makes the byte-level DTD check below sound.
_XML_ENCODINGS = frozenset({"windows-1251", "cp1251", "utf-8", "utf8", "us-ascii", "ascii"})


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


def check_published_unit_rate(where: str, computed: Decimal, published: Decimal) -> None:
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


def snippet(body: bytes) -> str:
    return repr(body[:60])


def looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def load_xml(body: bytes, what: str) -> ET.Element:
    if not body.strip():
        raise CbrError(f"{what}: empty body")
    if looks_like_html(body):
        raise CbrError(
            f"{what}: got an HTML page instead of XML (anti-bot challenge or error page): "
            f"{snippet(body)}"
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
        raise CbrError(f"{what}: not well-formed XML ({exc}): {snippet(body)}") from None


def require_root(root: ET.Element, tag: str, what: str) -> None:
    if root.tag != tag:
        raise CbrError(f"{what}: root element is <{root.tag}>, expected <{tag}>")


def required_text(element: ET.Element, tag: str, where: str) -> str:
    value = element.findtext(tag)
    if value is None or not value.strip():
        raise CbrError(f"{where}: <{tag}> is missing or empty")
    return value.strip()


def optional_text(element: ET.Element, tag: str) -> str | None:
    value = element.findtext(tag)
    if value is None or not value.strip():
        return None
    return value.strip()


def parse_date(text: str | None, where: str) -> dt.date:
    match = _DATE.fullmatch((text or "").strip())
    if match is None:
        raise CbrError(f"{where}: date {text!r} is not DD.MM.YYYY")
    day, month, year = (int(part) for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise CbrError(f"{where}: date {text!r} does not exist") from None


def parse_nominal(text: str | None, where: str) -> int:
    cleaned = (text or "").strip()
    if not _INTEGER.fullmatch(cleaned) or int(cleaned) < 1:
        raise CbrError(f"{where}: nominal {text!r} is not an integer >= 1")
    return int(cleaned)


def check_cbr_id(cbr_id: str | None, where: str) -> str:
    cleaned = (cbr_id or "").strip()
    if not CBR_ID.fullmatch(cleaned):
        raise CbrError(f"{where}: CBR id {cbr_id!r} is not like R01235")
    return cleaned


def check_num_code(num_code: str, where: str) -> str:
    if not _NUM_CODE.fullmatch(num_code):
        raise CbrError(f"{where}: numeric code {num_code!r} is not 1-3 digits")
    # XML_valFull drops leading zeros (36) where XML_daily has them (036); ISO 4217 is 3 digits.
    return num_code.zfill(3)


def make_rate(
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
    if not CODE.fullmatch(code):
        raise CbrError(f"{where}: currency code {code!r} is not 3 uppercase letters")
    if nominal < 1:
        raise CbrError(f"{where}: nominal {nominal} is not >= 1")
    if not value.is_finite() or value <= 0:
        raise CbrError(f"{where}: value {value} is not > 0")
    if not name:
        raise CbrError(f"{where}: name is empty")
    computed = unit_rate(value, nominal)
    if published_unit_rate is not None:
        check_published_unit_rate(where, computed, published_unit_rate)
    return CbrRate(
        code=code,
        cbr_id=check_cbr_id(cbr_id, where),
        num_code=check_num_code(num_code, where),
        nominal=nominal,
        value=value,
        unit_rate=computed,
        name=name,
    )


def finish_table(
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
