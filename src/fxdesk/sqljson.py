"""JSON text written by the database, byte for byte as pydantic writes the same values.

A page of rows read as rows costs Python work for every value (type conversion, a dict, a
model, its encoding), and on SQLite a hand-over of the GIL to the driver's thread for every row.
Written as JSON by the database, a page is one value: the page of tasks costs the same few
steps whether it holds 1 row or 200.

The constructs compile for SQLite and PostgreSQL. Values come out as pydantic's compact JSON
does: strings escaped alike (both escape only `"`, `\\` and control characters), aware
datetimes in UTC as `2026-01-31T10:00:00.123456Z` (no fraction when it is zero), objects
without spaces. tests/test_sqljson.py holds both databases to pydantic's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, case, literal_column, type_coerce
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

_KEY = re.compile(r"^[a-z_]+$")


class json_value(FunctionElement[str]):
    """A string, number or NULL column as JSON text (`null` for NULL)."""

    type = String()
    inherit_cache = True


@compiles(json_value, "sqlite")
def _json_value_sqlite(element: json_value, compiler: Any, **kw: Any) -> str:
    return f"json_quote({compiler.process(element.clauses, **kw)})"


@compiles(json_value, "postgresql")
def _json_value_postgresql(element: json_value, compiler: Any, **kw: Any) -> str:
    return f"coalesce(to_json({compiler.process(element.clauses, **kw)})::text, 'null')"


class utc_json(FunctionElement[str]):
    """A UTC datetime column (fxdesk.db.UTCDateTime) as a JSON string, or `null`."""

    type = String()
    inherit_cache = True


@compiles(utc_json, "sqlite")
def _utc_json_sqlite(element: utc_json, compiler: Any, **kw: Any) -> str:
    # stored as "2026-01-31 10:00:00.123456", in UTC
    value = compiler.process(element.clauses, **kw)
    text = f"replace(replace({value}, ' ', 'T'), '.000000', '')"
    return f"CASE WHEN {value} IS NULL THEN 'null' ELSE '\"' || {text} || 'Z\"' END"


@compiles(utc_json, "postgresql")
def _utc_json_postgresql(element: utc_json, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    text = (
        f"replace(to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
        "'.000000', '')"
    )
    return f"CASE WHEN {value} IS NULL THEN 'null' ELSE '\"' || {text} || 'Z\"' END"


class joined_json(FunctionElement[str]):
    """An aggregate: the JSON texts of its rows joined by commas (use it `.over(order_by=…)`,
    so the rows join in that order on both databases)."""

    type = String()
    inherit_cache = True


@compiles(joined_json, "sqlite")
def _joined_sqlite(element: joined_json, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ',')"


@compiles(joined_json, "postgresql")
def _joined_postgresql(element: joined_json, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ',')"


def _text(piece: str) -> ColumnElement[str]:
    return literal_column("'" + piece.replace("'", "''") + "'", String)


def json_object(fields: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[str]:
    """`{"key":value,...}` from (key, JSON text) pairs, in their order."""
    text: ColumnElement[str] | None = None
    for index, (key, value) in enumerate(fields):
        if not _KEY.match(key):
            raise ValueError(f"not a plain key: {key!r}")
        piece = _text(("{" if index == 0 else ",") + f'"{key}":')
        text = piece if text is None else text + piece
        text = text + type_coerce(value, String)
    if text is None:
        return _text("{}")
    return text + _text("}")


def or_null(present: ColumnElement[Any], text: ColumnElement[str]) -> ColumnElement[str]:
    """`text`, or `null` where `present` is NULL (an outer-joined object that is absent)."""
    return case((present.is_(None), _text("null")), else_=text)
