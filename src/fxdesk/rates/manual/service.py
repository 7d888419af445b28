"""Manual rates: listing, creating, changing and deleting them; each change is an event."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.db import utcnow
from fxdesk.errors import BadRequest
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import EventType
from fxdesk.rates.exceptions import RateNotFound
from fxdesk.rates.models import ManualRate
from fxdesk.rates.payloads import manual_payload
from fxdesk.users.models import User


async def list_manual(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[ManualRate], int]:
    total = await session.scalar(select(func.count()).select_from(ManualRate))
    rows = await session.scalars(
        select(ManualRate).order_by(ManualRate.id.desc()).offset(offset).limit(limit)
    )
    return list(rows), total or 0


async def create_manual(
    session: AsyncSession, actor: User, code: str, name: str, value: Decimal
) -> ManualRate:
    now = utcnow()
    row = ManualRate(
        code=code, name=name, value=value, created_by=actor.id, created_at=now, updated_at=now
    )
    session.add(row)
    await session.flush()
    await add_event(session, EventType.rate_created, manual_payload(row), actor=actor)
    return row


async def get_manual(session: AsyncSession, rate_id: int) -> ManualRate:
    row = await session.get(ManualRate, rate_id)
    if row is None:
        raise RateNotFound()
    return row


async def update_manual(
    session: AsyncSession,
    actor: User,
    rate_id: int,
    name: str | None = None,
    value: Decimal | None = None,
) -> ManualRate:
    """Apply the given fields; nothing changes (and nothing is announced) if they are the same."""
    if name is None and value is None:
        raise BadRequest("You must provide at least one parameter")
    row = await get_manual(session, rate_id)
    changed = False
    if name is not None and name != row.name:
        row.name, changed = name, True
    if value is not None and value != row.value:  # Decimal equality: 1.50 == 1.5
        row.value, changed = value, True
    if changed:
        row.updated_at = utcnow()
        await session.flush()
        await add_event(session, EventType.rate_updated, manual_payload(row), actor=actor)
    return row


async def delete_manual(session: AsyncSession, actor: User, rate_id: int) -> ManualRate:
    row = await get_manual(session, rate_id)
    payload = manual_payload(row)
    await session.delete(row)
    await session.flush()
    await add_event(session, EventType.rate_deleted, payload, actor=actor)
    return row
