"""The XML_daily parser: a daily table (XML_daily.asp), and English names (XML_daily_eng.asp)."""

from __future__ import annotations

from fxdesk.rates.cbr.fields import (
    finish_table,
    load_xml,
    make_rate,
    optional_text,
    parse_date,
    parse_decimal,
    parse_nominal,
    require_root,
    required_text,
)
from fxdesk.rates.cbr.records import CbrRate, CbrTable

__all__ = ["english_names", "parse_daily"]


def parse_daily(body: bytes) -> CbrTable:
    """Parse an XML_daily.asp (or XML_daily_eng.asp) body; raise CbrError unless it is a table."""
    what = "XML_daily"
    root = load_xml(body, what)
    require_root(root, "ValCurs", what)
    table_date = parse_date(root.get("Date"), f"{what} ValCurs")
    rates: list[CbrRate] = []
    for index, element in enumerate(root.findall("Valute")):
        where = f"{what} Valute #{index} ({element.get('ID')})"
        vunit = optional_text(element, "VunitRate")
        rates.append(
            make_rate(
                where,
                code=required_text(element, "CharCode", where),
                cbr_id=element.get("ID"),
                num_code=required_text(element, "NumCode", where),
                nominal=parse_nominal(required_text(element, "Nominal", where), where),
                value=parse_decimal(required_text(element, "Value", where), field=f"{where} Value"),
                name=required_text(element, "Name", where),
                published_unit_rate=(
                    None if vunit is None else parse_decimal(vunit, field=f"{where} VunitRate")
                ),
            )
        )
    return finish_table(what, table_date, rates, "cbr", body)


def english_names(body: bytes) -> dict[str, str]:
    """Currency code -> English name from an XML_daily_eng.asp body (validated like a table)."""
    return {rate.code: rate.name for rate in parse_daily(body).rates}
