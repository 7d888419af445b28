"""Rate-limit hits, shared by every instance through the database."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fxdesk.db import Base


class LimitHit(Base):
    """One counted attempt (a failed login, a chat message) of `key` in limit `bucket`."""

    __tablename__ = "limit_hits"
    __table_args__ = (
        Index("ix_limit_hits_bucket_key_at", "bucket", "key", "at"),
        Index("ix_limit_hits_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    at: Mapped[float] = mapped_column(Float)  # Unix time: comparable across instances
