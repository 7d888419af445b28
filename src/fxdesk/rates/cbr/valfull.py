"""The XML_valFull parser: CBR's currency reference (XML_valFull.asp)."""

from __future__ import annotations

from fxdesk.rates.cbr.fields import (
    CODE,
    check_cbr_id,
    check_num_code,
    load_xml,
    optional_text,
    parse_nominal,
    require_root,
    required_text,
)
from fxdesk.rates.cbr.records import CbrCurrency, CbrError

__all__ = ["parse_valfull"]


def parse_valfull(body: bytes) -> list[CbrCurrency]:
    """Parse the XML_valFull.asp currency reference (root `Valuta`, one `Item` per currency)."""
    what = "XML_valFull"
    root = load_xml(body, what)
    require_root(root, "Valuta", what)
    currencies: list[CbrCurrency] = []
    seen: set[str] = set()
    for index, item in enumerate(root.findall("Item")):
        where = f"{what} Item #{index} ({item.get('ID')})"
        cbr_id = check_cbr_id(item.get("ID"), where)
        if cbr_id in seen:
            raise CbrError(f"{where}: id {cbr_id} appears twice")
        seen.add(cbr_id)
        num_code = optional_text(item, "ISO_Num_Code")
        char_code = optional_text(item, "ISO_Char_Code")
        if char_code is not None and not CODE.fullmatch(char_code):
            raise CbrError(f"{where}: ISO code {char_code!r} is not 3 uppercase letters")
        currencies.append(
            CbrCurrency(
                cbr_id=cbr_id,
                name_ru=required_text(item, "Name", where),
                name_en=optional_text(item, "EngName") or "",
                nominal=parse_nominal(required_text(item, "Nominal", where), where),
                # Published right-padded to 10 characters ("R01010    ").
                parent_code=required_text(item, "ParentCode", where),
                iso_num_code=None if num_code is None else check_num_code(num_code, where),
                iso_char_code=char_code,
            )
        )
    if not currencies:
        raise CbrError(f"{what}: no currencies")
    return currencies
