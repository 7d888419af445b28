"""Bounded input types shared by every schema and parameter: no value can reach a 500.

Times and dates stay within years 1900-2200 (far from the calendar's edges, where shifting by
a UTC offset overflows, and inside what SQLite and PostgreSQL store); text refuses the
characters that render invisibly or reorder what a reader sees (and NUL, which PostgreSQL
cannot store); ids stay far below 64 bits.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

MIN_YEAR, MAX_YEAR = 1900, 2200
EARLIEST = dt.datetime(MIN_YEAR, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(MAX_YEAR, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
MAX_ID = 2**62  # below every database's BIGINT, with room for arithmetic

# Control, format (bidi overrides, zero-width), private-use, surrogate and unassigned code points.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
MULTILINE_ALLOWED = frozenset("\n\t")


def bounded_time(value: dt.datetime) -> dt.datetime:
    """An aware datetime within the supported years, in UTC."""
    # The year is checked before converting: 0001-01-01T00:00+23:59 in UTC is before year 1.
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"Times must lie between the years {MIN_YEAR} and {MAX_YEAR}")
    value = value.astimezone(dt.UTC)
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"Times must lie between the years {MIN_YEAR} and {MAX_YEAR}")
    return value


def bounded_date(value: dt.date) -> dt.date:
    """A date within the supported years (a day's arithmetic stays inside the calendar)."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"Dates must lie between the years {MIN_YEAR} and {MAX_YEAR}")
    return value


def check_text(value: str, *, multiline: bool = False) -> str:
    """`value` with CR LF (or a lone CR) as LF when multi-line; ValueError on a refused character.

    Refused: Unicode categories Cc, Cf, Co, Cs and Cn, except LF and TAB in multi-line text.
    """
    if multiline and "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    allowed = MULTILINE_ALLOWED if multiline else frozenset()
    for char in value:
        if unicodedata.category(char) in REFUSED_CATEGORIES and char not in allowed:
            raise ValueError(
                f"Text must not contain control or invisible format characters "
                f"(found U+{ord(char):04X})"
            )
    return value


def _multiline(value: str) -> str:
    return check_text(value, multiline=True)


Timestamp = Annotated[AwareDatetime, AfterValidator(bounded_time)]
CalendarDate = Annotated[dt.date, AfterValidator(bounded_date)]
Line = Annotated[str, AfterValidator(check_text)]
MultilineText = Annotated[str, AfterValidator(_multiline)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
