"""Exact conversion arithmetic over the 2026-04-25 table: one rounding, at the output."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fxdesk.errors import InvalidInput
from fxdesk.rates.cbr.daily import parse_daily
from fxdesk.rates.money import (
    convert,
    decimal_text,
    minor_units,
    normalized_text,
    parse_amount,
    round_amount,
    round_rate,
)
from tests.rates.conftest import DAILY_0425, fixture_bytes

TABLE = parse_daily(fixture_bytes(DAILY_0425)).by_code()
ONE = Decimal(1)


def test_jpy_to_rub_is_exact_and_rounded_once() -> None:
    jpy = TABLE["JPY"]
    assert (jpy.nominal, jpy.value) == (100, Decimal("47.2636"))
    result = convert(Decimal(1000), "JPY", "RUB", jpy.unit_rate, ONE)
    assert result.result_exact == Decimal("472.636")
    assert normalized_text(result.result_exact) == "472.636"
    assert decimal_text(result.result) == "472.64"


def test_irr_unit_rate_is_exact_despite_the_exponent() -> None:
    irr = TABLE["IRR"]
    assert irr.nominal == 1_000_000
    assert irr.unit_rate == Decimal("0.0000539256")
    assert decimal_text(irr.unit_rate) == "0.0000539256"


def test_eur_to_usd_rate_has_ten_significant_digits() -> None:
    exact = Context(prec=50).divide(Decimal("88.2826"), Decimal("75.5273"))
    expected = Context(prec=10, rounding=ROUND_HALF_EVEN).plus(exact)
    result = convert(Decimal(100), "EUR", "USD", TABLE["EUR"].unit_rate, TABLE["USD"].unit_rate)
    assert result.rate == expected
    assert len(result.rate.as_tuple().digits) <= 10
    # The unrounded figure keeps 34 significant digits: well beyond the 28 required.
    assert len(result.rate_exact.as_tuple().digits) == 34
    assert abs(result.rate_exact - exact) < Decimal("1e-32")


def test_amount_is_multiplied_before_dividing() -> None:
    # 1e15 IRR in BHD: any rounded intermediate rate would show in the last places.
    irr, bhd = TABLE["IRR"].unit_rate, TABLE["BHD"].unit_rate
    result = convert(Decimal("1e15"), "IRR", "BHD", irr, bhd)
    exact = Context(prec=60).divide(Decimal("1e15") * irr, bhd)
    assert result.result == exact.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)


@pytest.mark.parametrize(
    ("code", "places"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("VND", 0),
        ("BHD", 3),
        ("OMR", 3),
        ("KWD", 3),
        ("USD", 2),
        ("XDR", 2),
    ],
)
def test_minor_units(code: str, places: int) -> None:
    assert minor_units(code) == places
    assert round_amount(Decimal("1.23456"), code) == Decimal("1.23456").quantize(
        Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN
    )


def test_rounding_is_half_even() -> None:
    assert round_amount(Decimal("0.125"), "USD") == Decimal("0.12")
    assert round_amount(Decimal("0.135"), "USD") == Decimal("0.14")
    assert round_amount(Decimal("2.5"), "JPY") == Decimal("2")
    assert round_rate(Decimal("1.23456789015")) == Decimal("1.234567890")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("100", "100"), (" 12.50 ", "12.50"), ("1e3", "1E+3"), (0.1, "0.1"), (7, "7"), (".5", "0.5")],
)
def test_parse_amount_accepts(raw: object, expected: str) -> None:
    assert parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "-1",
        "NaN",
        "nan",
        "Infinity",
        "1e999",
        "1e16",
        "1000000000000001",
        "1e-40",
        "",
        "abc",
        "1,5",
        "0x10",
        float("nan"),
        float("inf"),
        True,
        None,
        "9" * 70,
    ],
)
def test_parse_amount_refuses(raw: object) -> None:
    with pytest.raises(InvalidInput):
        parse_amount(raw)


# --- properties, over every currency of the 2026-04-25 table ----------------------------------

CODES = sorted([*TABLE, "RUB"])
HAND = Context(prec=80)


def _unit(code: str) -> Decimal:
    """Per-unit rate by hand from the published figures: Value / Nominal (RUB = 1)."""
    if code == "RUB":
        return ONE
    rate = TABLE[code]
    return HAND.divide(rate.value, Decimal(rate.nominal))


amounts = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("1e12"), places=2, allow_nan=False
)


@settings(max_examples=300, deadline=None)
@given(amount=amounts, source=st.sampled_from(CODES), target=st.sampled_from(CODES))
def test_result_equals_the_hand_computation(amount: Decimal, source: str, target: str) -> None:
    unit_from = ONE if source == "RUB" else TABLE[source].unit_rate
    unit_to = ONE if target == "RUB" else TABLE[target].unit_rate
    result = convert(amount, source, target, unit_from, unit_to)
    by_hand = HAND.divide(HAND.multiply(amount, _unit(source)), _unit(target))
    # 34 significant digits kept before the one rounding: equal to the hand figure to 1e-30
    assert abs(result.result_exact - by_hand) <= abs(by_hand) * Decimal("1e-30")
    assert result.result == by_hand.quantize(
        Decimal(1).scaleb(-minor_units(target)), rounding=ROUND_HALF_EVEN
    )


@settings(max_examples=300, deadline=None)
@given(amount=amounts, source=st.sampled_from(CODES), target=st.sampled_from(CODES))
def test_there_and_back_returns_the_amount_within_rounding(
    amount: Decimal, source: str, target: str
) -> None:
    unit_a = ONE if source == "RUB" else TABLE[source].unit_rate
    unit_b = ONE if target == "RUB" else TABLE[target].unit_rate
    there = convert(amount, source, target, unit_a, unit_b).result  # rounded, as a user sees it
    back = convert(there, target, source, unit_b, unit_a)
    # The only loss is the rounding of `there` (half a minor unit of the target), carried back
    # at the target->source rate, plus the final rounding (half a minor unit of the source).
    half_target = Decimal(1).scaleb(-minor_units(target)) / 2
    half_source = Decimal(1).scaleb(-minor_units(source)) / 2
    bound = half_target * HAND.divide(unit_b, unit_a) + half_source
    assert abs(back.result - amount) <= bound
