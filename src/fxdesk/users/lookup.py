"""The per-request account check's read: one indexed row, without the ORM session machinery.

Every authenticated request loads its user (the role and the token version must be the ones in
the database now). Through an AsyncSession that costs about a millisecond of SQLAlchemy work,
and any hop to a database thread costs more than the read itself: on SQLite this is one
primary-key lookup on a read-only connection of its own, done in the loop thread. It takes
about 15 µs (less than encoding a response body), and in WAL mode a reader never waits for a
writer. The result is a detached `User`: services use its id, name and role; what changes a
user loads it in the request's own session.

Building that `User` costs more than the read (SQLAlchemy's instrumented constructor, about
40 µs), so the last one built per account is reused while its row reads the same: the row is
still read on every request, a changed role, version or state takes effect at once, and the
instance is shared between requests, so it must be treated as read-only (it always was).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from fxdesk.db import Database
from fxdesk.users.models import Role, User

_COLUMNS = (
    "id",
    "username",
    "username_key",
    "password_hash",
    "role",
    "is_active",
    "token_version",
    "created_at",
    "updated_at",
    "last_login_at",
)
_SQL = f"SELECT {', '.join(_COLUMNS)} FROM users WHERE id = ?"  # noqa: S608  (fixed columns)


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _user(row: Any) -> User:
    values = dict(zip(_COLUMNS, row, strict=True))
    return User(
        id=values["id"],
        username=values["username"],
        username_key=values["username_key"],
        password_hash=values["password_hash"],
        role=Role(values["role"]),
        is_active=bool(values["is_active"]),
        token_version=int(values["token_version"]),
        created_at=_when(values["created_at"]),
        updated_at=_when(values["updated_at"]),
        last_login_at=_when(values["last_login_at"]),
    )


KEEP_BUILT = 4096  # accounts whose last built User is kept


class UserLookup:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._conn: sqlite3.Connection | None = None
        self._built: dict[int, tuple[tuple[Any, ...], User]] = {}

    def _from_row(self, row: tuple[Any, ...]) -> User:
        user_id = row[0]
        kept = self._built.get(user_id)
        if kept is not None and kept[0] == row:
            return kept[1]
        user = _user(row)
        if len(self._built) >= KEEP_BUILT:
            self._built.clear()
        self._built[user_id] = (row, user)
        return user

    def _sqlite(self) -> sqlite3.Connection:
        if self._conn is None:
            path = self.database.engine.url.database or ""
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA busy_timeout=1000")
            self._conn = conn
        return self._conn

    async def get(self, user_id: int) -> User | None:
        if self.database.is_sqlite:
            row = self._sqlite().execute(_SQL, (user_id,)).fetchone()
            return self._from_row(row) if row is not None else None
        async with self.database.engine.connect() as connection:
            columns = [getattr(User, name) for name in _COLUMNS]
            row = (await connection.execute(select(*columns).where(User.id == user_id))).first()
        return self._from_row(tuple(row)) if row is not None else None

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
