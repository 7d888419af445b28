"""The JSON mirror parser: cbr-xml-daily.ru's `daily_json.js`, a copy of CBR's daily table."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import NoReturn

from fxdesk.rates.cbr.fields import finish_table, looks_like_html, make_rate, parse_decimal, snippet
from fxdesk.rates.cbr.records import CbrError, CbrRate, CbrTable

__all__ = ["parse_mirror_json"]


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
    if looks_like_html(body):
        raise CbrError(f"{what}: got an HTML page instead of JSON: {snippet(body)}")
    try:
        # Decimal straight from the JSON text: a float would turn 53.9141 into 53.914099999...
        document = json.loads(
            body.decode("utf-8-sig"),
            parse_float=Decimal,
            parse_constant=_reject_json_constant,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise CbrError(f"{what}: not UTF-8 JSON ({exc}): {snippet(body)}") from None
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
            make_rate(
                where,
                code=code,
                cbr_id=_json_str(row, "ID", where),
                num_code=_json_str(row, "NumCode", where),
                nominal=nominal,
                value=_json_decimal(row.get("Value"), f"{where} Value"),
                name=_json_str(row, "Name", where),
            )
        )
    return finish_table(what, table_date, rates, "mirror", body)
