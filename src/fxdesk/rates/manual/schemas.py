"""Request bodies and the response shape of manual rates; the value is a string in answers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from fxdesk.errors import InvalidInput
from fxdesk.fields import Line
from fxdesk.rates.money import parse_amount


def _positive_decimal(raw: object) -> Decimal:
    try:
        return parse_amount(raw, field="value")
    except InvalidInput as exc:
        raise ValueError(exc.detail) from None


# A JSON number or a string; > 0, finite, <= 1e15. Parsed from text, so 0.1 stays 0.1.
PositiveDecimal = Annotated[
    Decimal,
    BeforeValidator(_positive_decimal),
    Field(examples=["75.5273"], json_schema_extra={"type": ["string", "number"]}),
]
CurrencyCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$"),
]
RateName = Annotated[Line, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class ManualRateIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: CurrencyCode
    name: RateName
    value: PositiveDecimal


class ManualRatePatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: RateName | None = None
    value: PositiveDecimal | None = None


class ManualRateOut(BaseModel):
    id: int
    code: str
    name: str
    value: str
    created_at: dt.datetime
    updated_at: dt.datetime
    created_by: int | None
    manual: bool = True
