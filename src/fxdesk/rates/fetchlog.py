"""The fetch log: one row per attempt at a source (kept 90 days), and the questions asked of it.

Whether some instance fetched moments ago, and which days a backfill need not ask about.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.db import utcnow
from fxdesk.rates.ingest import Outcome
from fxdesk.rates.models import FetchLog, Rate

FETCH_LOG_KEEP = dt.timedelta(days=90)


async def record_fetch(
    session: AsyncSession,
    *,
    started_at: dt.datetime,
    trigger: str,
    source: str,
    outcome: Outcome,
    requested_date: dt.date | None = None,
    body_hash: str | None = None,
    table_date: dt.date | None = None,
    rows_changed: int = 0,
    error: str | None = None,
) -> FetchLog:
    row = FetchLog(
        started_at=started_at,
        finished_at=utcnow(),
        trigger=trigger,
        source=source,
        requested_date=requested_date,
        outcome=outcome,
        body_hash=body_hash,
        table_date=table_date,
        rows_changed=rows_changed,
        error=None if error is None else error[:2000],
    )
    session.add(row)
    await session.flush()
    return row


async def recent_fetches(session: AsyncSession, limit: int) -> list[FetchLog]:
    return list(await session.scalars(select(FetchLog).order_by(FetchLog.id.desc()).limit(limit)))


async def fetched_since(session: AsyncSession, since: dt.datetime) -> bool:
    """Whether a fetch of the newest table got an answer (any outcome but failed) since then."""
    found = await session.scalar(
        select(FetchLog.id)
        .where(
            FetchLog.started_at >= since,
            FetchLog.outcome != "failed",
            FetchLog.requested_date.is_(None),
        )
        .limit(1)
    )
    return found is not None


async def prune_fetch_log(session: AsyncSession, now: dt.datetime | None = None) -> None:
    cutoff = (now or utcnow()) - FETCH_LOG_KEEP
    await session.execute(delete(FetchLog).where(FetchLog.started_at < cutoff))


async def covered_days(session: AsyncSession, start: dt.date, end: dt.date) -> set[dt.date]:
    """Days a backfill need not ask about: a table carries that date, or a successful backfill
    request for that day already resolved it (a weekend answered with Friday's table)."""
    tables = await session.scalars(
        select(Rate.date).where(Rate.date >= start, Rate.date <= end).group_by(Rate.date)
    )
    asked = await session.scalars(
        select(FetchLog.requested_date)
        .where(
            FetchLog.trigger == "backfill",
            FetchLog.outcome != "failed",
            FetchLog.requested_date >= start,
            FetchLog.requested_date <= end,
        )
        .group_by(FetchLog.requested_date)
    )
    return {*tables, *(day for day in asked if day is not None)}
