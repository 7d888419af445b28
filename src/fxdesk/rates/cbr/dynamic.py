"""The XML_dynamic parser: one currency's fixings over a date range (XML_dynamic.asp)."""

from __future__ import annotations

import datetime as dt

from fxdesk.rates.cbr.fields import (
    check_published_unit_rate,
    load_xml,
    optional_text,
    parse_date,
    parse_decimal,
    parse_nominal,
    require_root,
    required_text,
    unit_rate,
)
from fxdesk.rates.cbr.records import CbrDynamicPoint, CbrError

__all__ = ["parse_dynamic"]


def parse_dynamic(body: bytes) -> list[CbrDynamicPoint]:
    """Parse XML_dynamic.asp, oldest first; an empty list is a range without any fixing."""
    what = "XML_dynamic"
    root = load_xml(body, what)
    require_root(root, "ValCurs", what)
    # A daily table also has a ValCurs root; its DateRange attributes tell a series apart.
    first = parse_date(root.get("DateRange1"), f"{what} ValCurs DateRange1")
    last = parse_date(root.get("DateRange2"), f"{what} ValCurs DateRange2")
    series_id = root.get("ID")
    points: dict[dt.date, CbrDynamicPoint] = {}
    for index, record in enumerate(root):
        where = f"{what} Record #{index} ({record.get('Date')})"
        if record.tag != "Record":
            raise CbrError(f"{where}: unexpected <{record.tag}> in a dynamic series")
        record_id = record.get("Id")
        if series_id and record_id and record_id != series_id:
            raise CbrError(f"{where}: record of {record_id} in the series of {series_id}")
        day = parse_date(record.get("Date"), where)
        if day in points:
            raise CbrError(f"{where}: date {day.isoformat()} appears twice")
        if not first <= day <= last:
            raise CbrError(f"{where}: date outside the requested {first} .. {last}")
        nominal = parse_nominal(required_text(record, "Nominal", where), where)
        value = parse_decimal(required_text(record, "Value", where), field=f"{where} Value")
        if value <= 0:
            raise CbrError(f"{where}: value {value} is not > 0")
        computed = unit_rate(value, nominal)
        vunit = optional_text(record, "VunitRate")
        if vunit is not None:
            published = parse_decimal(vunit, field=f"{where} VunitRate")
            check_published_unit_rate(where, computed, published)
        points[day] = CbrDynamicPoint(date=day, nominal=nominal, value=value, unit_rate=computed)
    return [points[day] for day in sorted(points)]
