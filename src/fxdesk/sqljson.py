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

from sqlalchemy import ColumnElement, String, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

_KEY = re.compile(r"^[a-z_]+$")


class utc_text(FunctionElement[str]):
    """A UTC datetime column (fxdesk.db.UTCDateTime) as pydantic's text, NULL for NULL."""

    type = String()
    inherit_cache = True


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element: utc_text, compiler: Any, **kw: Any) -> str:
    # stored as "2026-01-31 10:00:00.123456", in UTC; NULL || 'Z' is NULL
    value = compiler.process(element.clauses, **kw)
    return f"replace(replace({value}, ' ', 'T'), '.000000', '') || 'Z'"


@compiles(utc_text, "postgresql")
def _utc_text_postgresql(element: utc_text, compiler: Any, **kw: Any) -> str:
    # In a json_object it is written quoted right away: the text needs no escaping, and
    # to_json would be one more call per value.
    quoted = kw.pop(_QUOTED, False)
    value = compiler.process(element.clauses, **kw)
    text = f"to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    text = f"replace({text}, '.000000Z', 'Z')"
    return f"('\"' || {text} || '\"')" if quoted else text


_QUOTED = "fxdesk_quoted"


class json_object(FunctionElement[str]):
    """`{"key":value,...}` from (key, column) pairs, in their order: strings, numbers and
    NULLs as JSON values, a nested json_object (or embedded_json) as itself."""

    type = String()
    inherit_cache = True

    def __init__(self, fields: Sequence[tuple[str, ColumnElement[Any]]]) -> None:
        clauses: list[ColumnElement[Any]] = []
        for key, value in fields:
            if not _KEY.match(key):
                raise ValueError(f"not a plain key: {key!r}")
            clauses += [literal_column(f"'{key}'", String), value]
        super().__init__(*clauses)


@compiles(json_object, "sqlite")
def _json_object_sqlite(element: json_object, compiler: Any, **kw: Any) -> str:
    # SQLite's own, in C: its output is compact, and a nested object stays an object
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(json_object, "postgresql")
def _json_object_postgresql(element: json_object, compiler: Any, **kw: Any) -> str:
    # json_build_object writes `"key" : value, ` and to_json of a row the session's time zone:
    # the text is joined here instead, each value written by to_json
    pieces = list(element.clauses)
    parts = []
    for index in range(0, len(pieces), 2):
        key = pieces[index].name.strip("'")
        piece = pieces[index + 1]
        if isinstance(piece, utc_text):
            value = compiler.process(piece, **kw, **{_QUOTED: True})
        elif isinstance(piece, (json_object, embedded_json)):
            value = compiler.process(piece, **kw)
        else:
            value = f"to_json({compiler.process(piece, **kw)})::text"
        opening = "{" if index == 0 else ","
        parts.append(f"'{opening}\"{key}\":' || coalesce({value}, 'null')")
    return "(" + " || ".join(parts or ["'{'"]) + " || '}')"


class embedded_json(FunctionElement[str]):
    """A scalar subquery's json_object (NULL where it finds no row), kept an object where
    it is a json_object's value."""

    type = String()
    inherit_cache = True


@compiles(embedded_json, "sqlite")
def _embedded_sqlite(element: embedded_json, compiler: Any, **kw: Any) -> str:
    # a subquery's value has lost SQLite's JSON subtype: json() gives it back (NULL stays)
    return f"json({compiler.process(element.clauses, **kw)})"


@compiles(embedded_json, "postgresql")
def _embedded_postgresql(element: embedded_json, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


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
