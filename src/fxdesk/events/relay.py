"""The outbox relay: publishes committed events to JetStream in order, exactly once per event id."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from fxdesk.db import Database, utcnow
from fxdesk.events.broker import Broker
from fxdesk.events.lease import acquire_lease, release_lease
from fxdesk.events.models import Counter, Lease, OutboxEvent
from fxdesk.events.outbox import envelope_json
from fxdesk.logging import get_logger
from fxdesk.ops.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG
from fxdesk.tasking import stop_task, wait_event

log = get_logger("fxdesk.events.relay")

LEASE_NAME = "outbox-relay"
SEQ_COUNTER = "event_seq"
LEASE_TTL_SECONDS = 10.0
POKE_SUBJECT = "fxdesk.internal.relay-poke"
BATCH = 500
KEEP_PUBLISHED = timedelta(days=1)
CLEANUP_EVERY_SECONDS = 600.0


class OutboxRelay:
    """One relay per instance; a database lease makes one of them the publisher at a time.

    Only one publisher keeps the stream in `seq` order. An event gets its `seq` when the
    publisher takes it (`_sequence`), not when it is written: concurrent transactions commit in
    any order (PostgreSQL gives ids at insert time), so a seq given at insert could be published
    after a higher one and be skipped by every consumer. The counter lives in the database, so
    a relay that takes over after a failover goes on from the last seq given. The others wake
    it through a core-NATS poke after their own commits, so their events are not delayed
    until its next sweep.
    """

    def __init__(
        self, database: Database, broker: Broker, instance_id: str, sweep_seconds: float = 1.0
    ) -> None:
        self.database = database
        self.broker = broker
        self.instance_id = instance_id
        self.sweep_seconds = sweep_seconds
        self._wake = asyncio.Event()
        self._committed = False  # a commit of this instance is waiting (a follower pokes)
        self._task: asyncio.Task[None] | None = None
        self._poke_sub: object | None = None
        self._last_cleanup = 0.0
        self.is_leader = False
        self._lease_check_at = 0.0
        # Rows that have a seq but are not published (a publish failed, or a previous leader
        # died between giving seqs and publishing): looked for on taking over and after errors.
        self._look_for_given = True
        # Why the last attempt to publish failed; None once one succeeds (for /ready).
        self.problem: str | None = None

    def wake(self) -> None:
        self._wake.set()

    def _on_commit(self, _channels: frozenset[str]) -> None:
        self._committed = True
        self._wake.set()

    async def start(self) -> None:
        async def on_poke(_msg: object) -> None:
            if self.is_leader:
                self.wake()

        self._poke_sub = await self.broker.nc.subscribe(POKE_SUBJECT, cb=on_poke)  # type: ignore[union-attr]
        self.database.outbox_listeners.append(self._on_commit)

        async def on_reconnect() -> None:
            self.wake()

        self.broker.reconnect_listeners.append(on_reconnect)
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        self.wake()  # publish whatever an earlier run left behind

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Publish what is pending (bounded in time), then stop and give up the lease."""
        if self._on_commit in self.database.outbox_listeners:
            self.database.outbox_listeners.remove(self._on_commit)
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.publish_pending(), drain_seconds)
            await stop_task(self._task)
        if self.is_leader:
            with contextlib.suppress(Exception):
                await release_lease(self.database, LEASE_NAME, self.instance_id)

    async def _run(self) -> None:
        backoff = 0.2
        loop = asyncio.get_running_loop()
        while True:
            swept = not await wait_event(self._wake, self.sweep_seconds)
            self._wake.clear()
            try:
                await self.publish_pending()
                if swept and not self.is_leader:
                    await self._update_backlog()  # the leader's backlog, as a follower sees it
                self._set_problem(None)
                backoff = 0.2
                if self.is_leader and loop.time() - self._last_cleanup > CLEANUP_EVERY_SECONDS:
                    self._last_cleanup = loop.time()
                    await self._delete_old()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = str(exc) or type(exc).__name__
                self._set_problem(f"cannot publish: {error}")
                self._look_for_given = True
                log.warning("relay_failed", error=error, retry_in=backoff)
                self.wake()  # try again after the backoff, not only after the next sweep
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _set_problem(self, problem: str | None) -> None:
        if problem is None and self.problem is not None:
            log.info("relay_recovered")
        self.problem = problem

    async def publish_pending(self) -> int:
        """As the leader, publish every committed event in seq order; as a follower, poke the
        leader after a commit of ours. Returns how many were published."""
        if not self.broker.connected:
            await self._update_backlog()  # it grows while NATS is away
            return 0
        await self._hold_lease()
        if not self.is_leader:
            if self._committed:
                self._committed = False
                await self.broker.nc.publish(POKE_SUBJECT, b"")  # type: ignore[union-attr]
            return 0
        self._committed = False
        total = 0
        while True:
            rows = await self._take_batch()
            if rows is None:  # the lease has passed to another instance
                self.is_leader = False
                break
            done: list[int] = []
            try:
                for row in rows:
                    await self.broker.js.publish(
                        row.subject, envelope_json(row), headers={"Nats-Msg-Id": row.event_id}
                    )
                    done.append(row.id)
            finally:
                if done:
                    await self._mark_published(done)
                    EVENTS_PUBLISHED.inc(len(done))
                    total += len(done)
            if len(rows) < BATCH:
                OUTBOX_BACKLOG.set(0)  # everything committed before the batch was read is out
                break
            await self._hold_lease()  # a long backlog: keep the lease alive between batches
            if not self.is_leader:
                break
        return total

    async def _hold_lease(self) -> None:
        """Take or renew the lease a few times per TTL, not on every wake."""
        now = asyncio.get_running_loop().time()
        if now < self._lease_check_at:
            return
        was_leader = self.is_leader
        self.is_leader = await acquire_lease(
            self.database, LEASE_NAME, self.instance_id, LEASE_TTL_SECONDS
        )
        self._lease_check_at = now + LEASE_TTL_SECONDS / 3
        if self.is_leader and not was_leader:
            self._look_for_given = True
            log.info("relay_leader", instance=self.instance_id)

    async def _take_batch(self) -> list[OutboxEvent] | None:
        """The next events to publish, in seq order, giving seqs to committed rows without one.

        One transaction: the counter row is locked first (FOR UPDATE; SQLite's writer lock does
        the same), so two relays never give out the same seq, and every statement after it sees
        the rows the other committed. None when this instance no longer holds the lease.
        """
        async with self.database.session() as session:
            last = await session.scalar(
                select(Counter.value).where(Counter.name == SEQ_COUNTER).with_for_update()
            )
            holder = await session.scalar(
                select(Lease.holder).where(Lease.name == LEASE_NAME, Lease.expires_at > utcnow())
            )
            if holder != self.instance_id:
                return None
            given: list[OutboxEvent] = []
            if self._look_for_given:
                given = list(
                    await session.scalars(
                        select(OutboxEvent)
                        .where(OutboxEvent.published_at.is_(None), OutboxEvent.seq.is_not(None))
                        .order_by(OutboxEvent.seq)
                        .limit(BATCH)
                    )
                )
                self._look_for_given = len(given) == BATCH
            fresh = list(
                await session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.seq.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(BATCH - len(given))
                )
            )
            if fresh:
                start = last or 0
                for n, row in enumerate(fresh, 1):
                    row.seq = start + n
                if last is None:
                    session.add(Counter(name=SEQ_COUNTER, value=start + len(fresh)))
                else:
                    await session.execute(
                        update(Counter)
                        .where(Counter.name == SEQ_COUNTER)
                        .values(value=start + len(fresh))
                    )
        return given + fresh

    async def _mark_published(self, ids: list[int]) -> None:
        async with self.database.session() as session:
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(published_at=utcnow())
            )

    async def _update_backlog(self) -> None:
        async with self.database.session(write=False) as session:
            backlog = await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
        OUTBOX_BACKLOG.set(backlog or 0)

    async def _delete_old(self) -> None:
        cutoff = utcnow() - KEEP_PUBLISHED
        async with self.database.session() as session:
            await session.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.published_at.is_not(None), OutboxEvent.published_at < cutoff
                )
            )
