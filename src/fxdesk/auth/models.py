"""Server-side sessions and rate-limit hits, shared by every instance through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fxdesk.db import Base, UTCDateTime, utcnow


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


class UserSession(Base):
    """One login: its id travels in the token (`sid`); a request is served only while the
    session is alive (not ended, not expired), so ending it takes effect at once."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # why it ended: logout, logout_all, password_changed, deactivated, ended_by_user
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
