"""Services call `add_event` to record an event in the transaction of the change it announces."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.events.models import OutboxEvent
from fxdesk.events.schemas import SUBJECTS, EventType
from fxdesk.users.models import User

OUTBOX_CHANNELS = "fxdesk_outbox_channels"  # session.info: the channels of its new events


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact money: always a string, never a float
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot serialise {type(value).__name__} in an event")


def dump_json(value: Any) -> str:
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


async def add_event(
    session: AsyncSession,
    event_type: EventType,
    payload: dict[str, Any],
    actor: User | None = None,
) -> OutboxEvent:
    """Add an event to the current transaction: published only if (and once) it commits."""
    row = OutboxEvent(
        event_id=str(uuid.uuid4()),
        event_type=event_type.value,
        subject=SUBJECTS[event_type.channel],
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else None,
        payload=dump_json(payload),
    )
    session.add(row)
    await session.flush()
    session.info.setdefault(OUTBOX_CHANNELS, set()).add(event_type.channel)
    return row


def envelope_json(row: OutboxEvent) -> bytes:
    """The wire form of a sequenced outbox row: the envelope with the payload at top level."""
    if row.seq is None:
        raise ValueError("an outbox row is published only once the relay has given it a seq")
    body: dict[str, Any] = json.loads(row.payload)
    body.update(
        event=row.event_type,
        seq=row.seq,
        ts=row.created_at,
        actor={"id": row.actor_id, "username": row.actor_name} if row.actor_id else None,
        event_id=row.event_id,
    )
    return dump_json(body).encode()
