"""Rates tables: currencies, official CBR rates and their revisions, manual rates, the fetch log."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from fxdesk.db import Base, UTCDateTime, utcnow


class DecimalText(TypeDecorator[Decimal]):
    """An exact Decimal stored as its text: SQLite's NUMERIC would round it through a float."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"DecimalText takes finite Decimals only, got {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class Currency(Base):
    """A currency CBR has published, with what its newest table said about it."""

    __tablename__ = "currencies"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    cbr_id: Mapped[str] = mapped_column(String(8))
    num_code: Mapped[str | None] = mapped_column(String(3), nullable=True)
    name_ru: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128), default="")
    nominal: Mapped[int] = mapped_column(Integer)
    first_date: Mapped[dt.date] = mapped_column(Date)
    last_date: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Rate(Base):
    """One currency in one CBR table: nominal and value as published, the exact per-unit rate."""

    __tablename__ = "rates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(3), ForeignKey("currencies.code"))
    date: Mapped[dt.date] = mapped_column(Date)
    nominal: Mapped[int] = mapped_column(Integer)
    value: Mapped[Decimal] = mapped_column(DecimalText)
    unit_rate: Mapped[Decimal] = mapped_column(DecimalText)
    # The name as that table printed it: CBR words it by the nominal ("Гонконгских долларов").
    name: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(8))  # cbr | mirror
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # The unique (code, date) index also serves one currency's history, newest first (read
    # backwards); ix_rates_date_code serves whole tables and, covering the order, the
    # newest-first listing.
    __table_args__ = (
        UniqueConstraint("code", "date", name="uq_rates_code_date"),
        # date DESC, code ASC: the listing's exact order, so OFFSET walks the index, no sort
        Index("ix_rates_date_code", text("date DESC"), "code"),
        {"sqlite_autoincrement": True},
    )


class RateRevision(Base):
    """What a rate row said before CBR corrected a table it had already published."""

    __tablename__ = "rate_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rate_id: Mapped[int] = mapped_column(Integer, ForeignKey("rates.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(3))
    date: Mapped[dt.date] = mapped_column(Date)
    nominal: Mapped[int] = mapped_column(Integer)
    value: Mapped[Decimal] = mapped_column(DecimalText)
    unit_rate: Mapped[Decimal] = mapped_column(DecimalText)
    source: Mapped[str] = mapped_column(String(8))
    replaced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_rate_revisions_rate_id", "rate_id"),)


class ManualRate(Base):
    """A rate an admin entered by hand; kept apart from the official tables, never mixed in."""

    __tablename__ = "manual_rates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(3))
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[Decimal] = mapped_column(DecimalText)
    created_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_manual_rates_code", "code"),
        {"sqlite_autoincrement": True},
    )


class FetchLog(Base):
    """One attempt to read a table from one source, whatever came of it."""

    __tablename__ = "fetch_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual | cli | backfill
    source: Mapped[str] = mapped_column(String(8))  # cbr | mirror
    # The day asked for (backfill), None for "the newest table".
    requested_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    body_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    table_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    rows_changed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_fetch_log_started_at", "started_at"),
        Index("ix_fetch_log_requested_date", "requested_date"),
    )
