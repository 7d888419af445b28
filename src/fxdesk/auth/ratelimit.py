"""Sliding-window limits (failed logins per account and address, chat messages per user),
counted in the database so that every instance sees the same hits."""

from __future__ import annotations

import hashlib
import math
import time

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.auth.models import LimitHit
from fxdesk.db import Database

PRUNE_EVERY_SECONDS = 60.0
# Longer keys (NFKC can make a 64-character username ten times longer) are stored as a hash,
# so that any key fits the column.
MAX_PLAIN_KEY = 128


def _stored(key: str) -> str:
    if len(key) <= MAX_PLAIN_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class SlidingWindowCounter:
    """At most `limit` hits per key within the last `window` seconds, in bucket `bucket`.

    Each call runs in the caller's transaction, so a hit counted for a change that is then
    rolled back is rolled back with it. Hits older than the window are deleted as the key is
    hit again, and the whole bucket's now and then, so the table stays small.
    """

    def __init__(self, bucket: str, limit: int, window: float) -> None:
        self.bucket = bucket
        self.limit = limit
        self.window = window
        self._pruned_at = 0.0

    async def retry_after(self, session: AsyncSession, key: str) -> int:
        """Seconds until `key` may try again; 0 when it is not over the limit."""
        key = _stored(key)
        now = time.time()
        recent = list(
            await session.scalars(
                select(LimitHit.at)
                .where(
                    LimitHit.bucket == self.bucket,
                    LimitHit.key == key,
                    LimitHit.at > now - self.window,
                )
                .order_by(LimitHit.at.desc())
                .limit(self.limit)
            )
        )
        if len(recent) < self.limit:
            return 0
        # The limit-th newest hit leaves the window first among those that keep it full.
        return max(1, math.ceil(recent[-1] + self.window - now))

    async def hit(self, session: AsyncSession, key: str) -> None:
        key = _stored(key)
        now = time.time()
        await session.execute(insert(LimitHit).values(bucket=self.bucket, key=key, at=now))
        stale = LimitHit.at <= now - self.window
        if now - self._pruned_at > PRUNE_EVERY_SECONDS:
            self._pruned_at = now
            await session.execute(delete(LimitHit).where(LimitHit.bucket == self.bucket, stale))
        else:
            await session.execute(
                delete(LimitHit).where(LimitHit.bucket == self.bucket, LimitHit.key == key, stale)
            )

    async def reset(self, session: AsyncSession, key: str) -> None:
        key = _stored(key)
        await session.execute(
            delete(LimitHit).where(LimitHit.bucket == self.bucket, LimitHit.key == key)
        )

    async def count(self, session: AsyncSession, key: str) -> int:
        """Hits of `key` within the window (for tests and diagnostics)."""
        key = _stored(key)
        now = time.time()
        return int(
            await session.scalar(
                select(func.count())
                .select_from(LimitHit)
                .where(
                    LimitHit.bucket == self.bucket,
                    LimitHit.key == key,
                    LimitHit.at > now - self.window,
                )
            )
            or 0
        )


class LoginLimiter:
    """Failed logins; each call is its own transaction.

    The strict limit counts failures per (account, client address): an attacker elsewhere
    cannot lock the owner out, and is stopped at that limit for the account from his address.
    Two looser ceilings hold across addresses (one account tried from many) and across
    accounts (one address trying many). A successful login clears the strict counter of its
    (account, address) only: failures elsewhere still count towards the ceilings.
    """

    def __init__(
        self,
        per_account: int,
        per_address: int,
        window: float,
        per_account_total: int | None = None,
    ) -> None:
        """`per_account` is the strict limit of one account from one address; the account's
        ceiling over all addresses is `per_account_total` (default: ten times `per_account`)."""
        total = per_account_total if per_account_total is not None else 10 * per_account
        self.pairs = SlidingWindowCounter("login-account-address", per_account, window)
        self.accounts = SlidingWindowCounter("login-account", total, window)
        self.addresses = SlidingWindowCounter("login-address", per_address, window)

    async def retry_after(self, database: Database, account: str, address: str) -> int:
        """Seconds until `account` may be tried from `address` again; 0 when it may now."""
        async with database.session(write=False) as session:
            return max(
                await self.pairs.retry_after(session, _pair(account, address)),
                await self.accounts.retry_after(session, account),
                await self.addresses.retry_after(session, address),
            )

    async def failed(self, database: Database, account: str, address: str) -> None:
        async with database.session() as session:
            await self.pairs.hit(session, _pair(account, address))
            await self.accounts.hit(session, account)
            await self.addresses.hit(session, address)

    async def succeeded(self, database: Database, account: str, address: str) -> None:
        async with database.session() as session:
            await self.pairs.reset(session, _pair(account, address))


def _pair(account: str, address: str) -> str:
    # An address never contains a space, so no two (account, address) pairs share a key.
    return f"{address} {account}"
