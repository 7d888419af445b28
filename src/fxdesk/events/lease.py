"""Database leases: a named job runs on one instance at a time, taken over when its holder dies."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fxdesk.db import Database, utcnow
from fxdesk.events.models import Lease


async def acquire_lease(database: Database, name: str, holder: str, ttl_seconds: float) -> bool:
    """Take or renew lease `name` for `holder`; False while another live holder has it.

    One statement either way (insert, or take over an expired or own row), so a follower
    asking every few seconds costs one round trip and never a failed insert.
    """
    now = utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    insert = pg_insert if database.url.startswith("postgresql") else sqlite_insert
    statement = insert(Lease).values(name=name, holder=holder, expires_at=expires)
    statement = statement.on_conflict_do_update(
        index_elements=[Lease.name],
        set_={"holder": holder, "expires_at": expires},
        where=(Lease.holder == holder) | (Lease.expires_at < now),
    )
    async with database.session() as session:
        result = await session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_lease(database: Database, name: str, holder: str) -> None:
    async with database.session() as session:
        await session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
