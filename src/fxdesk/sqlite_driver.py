"""SQLAlchemy's aiosqlite adaptation, with one trip to the database thread per statement.

aiosqlite runs each call on the connection's own thread and hands the result back to the
event loop; SQLAlchemy's adaptation makes a trip for the cursor, the statement, its rows and
the cursor's close, then one to commit and one to reset the connection even when no
transaction is open (a reader's statements run in autocommit, see `db._tune_sqlite`). Each
trip is a queue put, a thread wake-up and a loop wake-up: a one-statement read cost six.

Here a statement is one trip that executes it, fetches its rows and closes its cursor, and
notes whether the connection is inside a transaction afterwards. COMMIT and ROLLBACK are sent
only when it is (or might be): outside one, sqlite3 would do nothing for them anyway.

Everything else is SQLAlchemy's own dialect: `Database` passes this module as the engine's
DBAPI (`create_async_engine(..., module=...)`) for `sqlite+aiosqlite` URLs.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

Outcome = tuple[Any, Sequence[Any], int, Any, bool]


def _run(raw: Any, operation: str, parameters: Any, many: bool) -> Outcome:
    """On the database thread: the statement, its rows, and the transaction state after it."""
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else ()
        return description, rows, cursor.rowcount, cursor.lastrowid, raw.in_transaction
    finally:
        cursor.close()


class Cursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one trip; it holds no cursor of the driver's."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no trip to open a driver cursor
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: Any = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # nothing is open on the driver's side

    def close(self) -> None:
        self._rows.clear()

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> None:
        connection: Connection = self._adapt_connection  # type: ignore[assignment]
        async with connection._execute_mutex:
            connection.in_transaction = True  # unknown until the statement has run
            driver = self._connection
            outcome: Outcome = await driver._execute(
                _run, driver._conn, operation, parameters, many
            )
            self._description, rows, self._rowcount, self._lastrowid, in_transaction = outcome
            self._rows = collections.deque(rows)
            connection.in_transaction = in_transaction

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._trip(operation, seq_of_parameters, True)


class Connection(AsyncAdapt_aiosqlite_connection):
    """Knows whether a transaction is open, so that COMMIT/ROLLBACK outside one cost nothing."""

    __slots__ = ("in_transaction",)
    _cursor_cls = Cursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.in_transaction = True  # unknown yet: the first COMMIT/ROLLBACK is sent

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
            self.in_transaction = True  # its statements run outside `Cursor._trip`
        return super().cursor(server_side)

    def commit(self) -> None:
        if self.in_transaction:
            super().commit()
            self.in_transaction = False

    def rollback(self) -> None:
        if self.in_transaction:
            super().rollback()
            self.in_transaction = False


class DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> Connection:
        creator_fn = kw.pop("async_creator_fn", None)
        connection = creator_fn(*arg, **kw) if creator_fn else self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy does: a lost one must not block exit
        return Connection(self, await_(connection))


def dbapi() -> DBAPI:
    """The module to give `create_async_engine(module=...)` for a sqlite+aiosqlite URL."""
    stock = SQLiteDialect_aiosqlite.import_dbapi()
    return DBAPI(stock.aiosqlite, stock.sqlite)
