"""Response builders: the JSON shapes of tables, series, currencies, rate events and rate rows.

Every figure leaves here as a string; the cache encodes these once per table change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from fxdesk.rates.models import ManualRate, Rate
from fxdesk.rates.money import (
    BASE_CODE,
    RUB_NAMES,
    RUB_NUM_CODE,
    cross_rate,
    decimal_text,
    normalized_text,
    round_rate,
)
from fxdesk.rates.snapshots import CurrencyInfo, RateTable

# --- tables, series and currencies (the reads) ---------------------------------------------


def _row(
    code: str,
    name: str,
    info: CurrencyInfo | None,
    nominal: int,
    value: str,
    exact: Decimal,
    previous: Decimal | None,
    source: str,
) -> dict[str, Any]:
    return {
        "code": code,
        "num_code": info.num_code if info else None,
        "name": name,
        "name_en": info.name_en if info else "",
        "nominal": nominal,
        "value": value,
        "rate": normalized_text(round_rate(exact)),
        "rate_unrounded": normalized_text(exact),
        "previous_rate": None if previous is None else normalized_text(round_rate(previous)),
        "source": source,
    }


def table_payload(
    table: RateTable,
    previous: RateTable | None,
    base: str,
    currencies: dict[str, CurrencyInfo],
) -> dict[str, Any]:
    """A table in `base`: `rate` is units of `base` per one unit of each currency.

    `nominal` and `value` are always CBR's own figures (RUB per `nominal` units).
    """
    base_unit = table.unit(base)
    assert base_unit is not None, "the caller checks the base against the table"
    previous_base = previous.unit(base) if previous else None
    rows = []
    for code in sorted(table.rates):
        if code == base:
            continue
        rate = table.rates[code]
        before = previous.unit(code) if previous else None
        moved_from = (
            None if before is None or previous_base is None else cross_rate(before, previous_base)
        )
        rows.append(
            _row(
                code,
                rate.name,
                currencies.get(code),
                rate.nominal,
                decimal_text(rate.value),
                cross_rate(rate.unit_rate, base_unit),
                moved_from,
                rate.source,
            )
        )
    if base != BASE_CODE:
        rub = CurrencyInfo(BASE_CODE, None, RUB_NUM_CODE, *RUB_NAMES, 1, None, None)
        rows.append(
            _row(
                BASE_CODE,
                RUB_NAMES[0],
                rub,
                1,
                "1",
                cross_rate(Decimal(1), base_unit),
                None if previous_base is None else cross_rate(Decimal(1), previous_base),
                "cbr",
            )
        )
        rows.sort(key=lambda row: str(row["code"]))
    return {
        "date": table.date.isoformat(),
        "base": base,
        "source": table.source,
        "previous_date": previous.date.isoformat() if previous else None,
        "count": len(rows),
        "rates": rows,
    }


def series_points(
    rows: Sequence[Rate], codes: Sequence[str], base: str
) -> dict[str, list[dict[str, Any]]]:
    """Per code, its rate in `base` on each table date; both legs always from the same table."""
    by_date: dict[dt.date, dict[str, Rate]] = {}
    for row in rows:
        by_date.setdefault(row.date, {})[row.code] = row
    one = Decimal(1)
    points: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
    for day, table in sorted(by_date.items()):
        base_unit = table[base].unit_rate if base in table else one if base == BASE_CODE else None
        if base_unit is None:
            continue  # no base rate that day, so no cross rate from that table
        for code in codes:
            if code == BASE_CODE:
                nominal, value, unit = 1, "1", one
            elif code in table:
                row = table[code]
                nominal, value, unit = row.nominal, decimal_text(row.value), row.unit_rate
            else:
                continue
            points[code].append(
                {
                    "date": day.isoformat(),
                    "rate": normalized_text(round_rate(cross_rate(unit, base_unit))),
                    "nominal": nominal,
                    "value": value,
                }
            )
    return points


def currencies_payload(currencies: Sequence[CurrencyInfo]) -> dict[str, Any]:
    items = [
        {
            "code": c.code,
            "cbr_id": c.cbr_id,
            "num_code": c.num_code,
            "name_ru": c.name_ru,
            "name_en": c.name_en,
            "nominal": c.nominal,
            "first_date": c.first_date.isoformat() if c.first_date else None,
            "last_date": c.last_date.isoformat() if c.last_date else None,
        }
        for c in currencies
    ]
    return {"count": len(items), "currencies": items}


# --- rate events and the seed's rate rows ---------------------------------------------------


def official_payload(row: Rate, previous: Decimal | None, *, correction: bool) -> dict[str, Any]:
    """A rate event: the seed's fields at top level (`value` = per-unit rate), then ours."""
    return {
        "id": row.id,
        "code": row.code,
        "name": row.name,
        "value": decimal_text(row.unit_rate),
        "created_at": row.created_at,
        "date": row.date.isoformat(),
        "nominal": row.nominal,
        "published_value": decimal_text(row.value),
        "previous_value": None if previous is None else decimal_text(previous),
        "source": row.source,
        "manual": False,
        "correction": correction,
    }


def manual_payload(row: ManualRate) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "name": row.name,
        "value": decimal_text(row.value),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "created_by": row.created_by,
        "manual": True,
    }


def official_row(row: Rate) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "name": row.name,
        "value": normalized_text(row.unit_rate),
        "created_at": row.created_at,
        "date": row.date.isoformat(),
        "nominal": row.nominal,
        "published_value": decimal_text(row.value),
        "source": row.source,
        "manual": False,
    }
