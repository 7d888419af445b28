"""Money arithmetic, exact: amounts and codes parsed, cross rates through RUB, rounding.

Figures stay Decimals in a 34-digit context; the only rounding is the one at the output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, DecimalException

from fxdesk.errors import InvalidInput

# 34 significant digits (IEEE decimal128): comfortably above the 28 the rules ask for, so the
# only rounding a figure ever sees is the one at the output.
EXACT = Context(prec=34, rounding=ROUND_HALF_EVEN)
RATE_DIGITS = Context(prec=10, rounding=ROUND_HALF_EVEN)
MAX_AMOUNT = Decimal("1e15")
# An amount may not be finer than this: 1e-28 of a unit is already far below any real money.
MAX_AMOUNT_PLACES = 28
BASE_CODE = "RUB"
RUB_NAMES = ("Российский рубль", "Russian Ruble")
RUB_NUM_CODE = "643"

_AMOUNT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,6})?")
_CODE = re.compile(r"[A-Za-z]{3}")

# ISO 4217 minor units that differ from the usual 2 (the CBR list and their neighbours).
_ZERO_PLACES = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX")
_ZERO_PLACES_MORE = ("UYI", "VND", "VUV", "XAF", "XOF", "XPF")
_THREE_PLACES = ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")
_MINOR_UNITS = {
    **dict.fromkeys(_ZERO_PLACES + _ZERO_PLACES_MORE, 0),
    **dict.fromkeys(_THREE_PLACES, 3),
    "CLF": 4,
    "UYW": 4,
}


def minor_units(code: str) -> int:
    """Decimal places of `code` under ISO 4217; 2 when it has no entry (XDR included)."""
    return _MINOR_UNITS.get(code, 2)


def decimal_text(value: Decimal) -> str:
    """Plain positional notation: a JSON string a client can read without parsing `E-05`."""
    return format(value, "f")


def normalized_text(value: Decimal) -> str:
    """Positional notation without trailing zeros (`472.636000` -> `472.636`, 1E+3 -> 1000)."""
    return decimal_text(EXACT.normalize(value)) if value else "0"


def parse_amount(raw: object, *, field: str = "amount") -> Decimal:
    """A positive, finite amount of at most 1e15 from a string or JSON number, else InvalidInput."""
    if isinstance(raw, bool) or raw is None:
        raise InvalidInput(f"{field} must be a number")
    if isinstance(raw, float):
        raw = repr(raw)  # the shortest text that reads back as this float: 0.1, not 0.1000…
    text = str(raw).strip()
    if len(text) > 64 or not _AMOUNT.fullmatch(text):
        raise InvalidInput(f"{field} must be a plain decimal number such as 100 or 12.50")
    try:
        amount = Decimal(text)
    except DecimalException:
        raise InvalidInput(f"{field} is not a number") from None
    return check_amount(amount, field=field)


def check_amount(amount: Decimal, *, field: str = "amount") -> Decimal:
    if not amount.is_finite():
        raise InvalidInput(f"{field} must be finite")
    if amount <= 0:
        raise InvalidInput(f"{field} must be greater than 0")
    if amount > MAX_AMOUNT:
        raise InvalidInput(f"{field} must be at most 1e15")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_AMOUNT_PLACES:
        raise InvalidInput(f"{field} has more than {MAX_AMOUNT_PLACES} decimal places")
    return amount


def parse_code(raw: str, *, field: str = "currency code") -> str:
    """Three letters, upper-cased; whether the code is known is the caller's question."""
    text = raw.strip()
    if not _CODE.fullmatch(text):
        raise InvalidInput(f"{field} must be 3 letters, got {raw[:16]!r}")
    if not text.isupper():
        # ISO 4217 codes are capitals; refusing "usd" keeps every client's data in one form.
        raise InvalidInput(f"{field} must be in capitals (ISO 4217): {text.upper()!r}")
    return text


def round_rate(rate: Decimal) -> Decimal:
    """A rate for display: 10 significant digits, half to even, no trailing zeros."""
    return RATE_DIGITS.plus(rate).normalize(RATE_DIGITS)


def round_amount(amount: Decimal, code: str) -> Decimal:
    """An amount in `code`'s minor units (JPY 0, KWD 3, most 2), half to even."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(code)), context=EXACT)


def cross_rate(unit_from: Decimal, unit_to: Decimal) -> Decimal:
    """Units of the target per one unit of the source, both unit rates in RUB, unrounded."""
    return EXACT.divide(unit_from, unit_to)


@dataclass(frozen=True, slots=True)
class Conversion:
    """`amount` of `source` in `target`; `*_exact` carry the figure before the one rounding."""

    source: str
    target: str
    amount: Decimal
    rate_exact: Decimal
    result_exact: Decimal

    @property
    def rate(self) -> Decimal:
        return round_rate(self.rate_exact)

    @property
    def result(self) -> Decimal:
        return round_amount(self.result_exact, self.target)


def convert(
    amount: Decimal, source: str, target: str, unit_from: Decimal, unit_to: Decimal
) -> Conversion:
    """amount x unit(source) / unit(target): multiply first, so no intermediate rate is rounded."""
    result = EXACT.divide(EXACT.multiply(amount, unit_from), unit_to)
    return Conversion(
        source=source,
        target=target,
        amount=amount,
        rate_exact=cross_rate(unit_from, unit_to),
        result_exact=result,
    )
