"""Outbox rows (events written in the same transaction as the change) and leases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fxdesk.db import Base, UTCDateTime, utcnow


class OutboxEvent(Base):
    __tablename__ = "outbox"

    # The id is given at insert time and only orders rows for the relay; concurrent transactions
    # commit in any order, so the public `seq` is given by the relay when it takes the row.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_name: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # AUTOINCREMENT: ids never go back, even after old published rows are deleted.
    __table_args__ = (
        Index("ix_outbox_unpublished", "published_at", "id"),
        Index("ix_outbox_seq", "seq", unique=True),
        Index("ix_outbox_unsequenced", "seq", "id"),
        {"sqlite_autoincrement": True},
    )


class Counter(Base):
    """A named counter; `event_seq` is the last `seq` given to an event."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class Lease(Base):
    """A named lock with an expiry: one instance of many does a job (publish, fetch) at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
