"""Database leases: a named job runs on one instance at a time, taken over when its holder dies."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from fxdesk.db import Database, utcnow
from fxdesk.events.models import Lease


async def acquire_lease(database: Database, name: str, holder: str, ttl_seconds: float) -> bool:
    """Take or renew lease `name` for `holder`; False while another live holder has it."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    async with database.session() as session:
        result = await session.execute(
            update(Lease)
            .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now))
            .values(holder=holder, expires_at=expires)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
    try:
        async with database.session() as session:
            await session.execute(
                insert(Lease).values(name=name, holder=holder, expires_at=expires)
            )
    except IntegrityError:
        return False  # someone else holds it
    return True


async def release_lease(database: Database, name: str, holder: str) -> None:
    async with database.session() as session:
        await session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
