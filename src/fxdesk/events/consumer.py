"""The event consumer: follows the JetStream stream in order and hands each new event, once, to
its listeners (the WebSocket hub, the rates cache). It heals itself: whenever its subscription
dies (server gone, cluster failover, reconnection to another node, consumer deleted) it is
re-created from the last stream sequence handled, retrying with backoff for as long as it runs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from fxdesk.events.broker import Broker
from fxdesk.events.schemas import CHANNEL_OF_SUBJECT, Channel, Envelope
from fxdesk.logging import get_logger
from fxdesk.ops.metrics import CONSUMER_RECOVERIES, EVENTS_INVALID
from fxdesk.tasking import stop_task, wait_event

RECOVERY_HOLD_SECONDS = 1.0

log = get_logger("fxdesk.events.consumer")

Listener = Callable[[int, Channel, str], None]

CHECK_SECONDS = 1.0  # how often the watchdog asks the server about the consumer
STALL_SECONDS = 3.0  # undelivered messages with no progress for this long: re-create it
ANSWER_SECONDS = 2.0  # a consumer that does not answer within this is taken as gone
MAX_BACKOFF_SECONDS = 5.0


class EventConsumer:
    """One per instance. `problem` is None while a consumer is live, else why it is not."""

    def __init__(
        self,
        broker: Broker,
        *,
        check_seconds: float = CHECK_SECONDS,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self.broker = broker
        self.check_seconds = check_seconds
        self.stall_seconds = stall_seconds
        self.listeners: list[Listener] = []
        self.last_seq = 0  # the highest envelope seq handed to the listeners
        self.stream_seq = 0  # the highest stream sequence handled
        self.caught_up = asyncio.Event()  # set once the stream read at start is through
        self.problem: str | None = "not started"
        # The last outage, and when it ended (monotonic): see `readiness`.
        self._recovered: tuple[float, str] | None = None
        self._subscription: Any = None
        self._renew = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._progress_at = 0.0

    @property
    def live(self) -> bool:
        return self.problem is None

    async def start(self) -> None:
        """Read the whole stream (what the listeners replay from), then follow it live."""
        info = await self.broker.js.stream_info(self.broker.settings.nats_stream)
        if info.state.messages == 0:
            self.caught_up.set()
        await self._subscribe()
        self._set_problem(None)
        self.broker.reconnect_listeners.append(self._on_reconnect)
        self._task = asyncio.create_task(self._watch(), name="event-consumer-watchdog")

    async def stop(self) -> None:
        if self._on_reconnect in self.broker.reconnect_listeners:
            self.broker.reconnect_listeners.remove(self._on_reconnect)
        if self._task is not None:
            await stop_task(self._task)
        await self._unsubscribe()

    async def wait_caught_up(self, limit_seconds: float) -> None:
        await wait_event(self.caught_up, limit_seconds)

    async def _on_reconnect(self) -> None:
        # The ordered consumer would notice missed heartbeats only after seconds, and a
        # restarted server or another node may not know it at all: re-create it at once. Until
        # the watchdog has seen the new one answer, this instance is not ready.
        self._set_problem("reconnected to NATS: re-creating the stream consumer")
        self._renew.set()

    async def _unsubscribe(self) -> None:
        old, self._subscription = self._subscription, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()

    async def _subscribe(self) -> None:
        await self._unsubscribe()
        self._progress_at = asyncio.get_running_loop().time()
        self._subscription = await self.broker.js.subscribe(
            ">",
            stream=self.broker.settings.nats_stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=self.stream_seq + 1),
            cb=self._on_message,
            pending_msgs_limit=1_000_000,
        )

    async def _watch(self) -> None:
        backoff = 0.2
        while True:
            await wait_event(self._renew, self.check_seconds)
            try:
                if self._renew.is_set():
                    self._renew.clear()
                    await self._recreate("reconnected to NATS")
                problem = await self._check()
                if problem is not None and self.broker.connected:
                    self._set_problem(problem)
                    await self._recreate(problem)
                    problem = await self._check()
                self._set_problem(problem)
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = str(exc) or type(exc).__name__
                self._set_problem(f"the stream consumer cannot be created: {error}")
                self._renew.set()  # try again after the backoff
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _recreate(self, reason: str) -> None:
        await self._subscribe()
        CONSUMER_RECOVERIES.inc()
        log.info("event_consumer_recreated", reason=reason, from_stream_seq=self.stream_seq + 1)

    async def _check(self) -> str | None:
        """Why no consumer is live (None when one is): asked of the server itself."""
        if not self.broker.connected:
            return "NATS is not connected"
        subscription = self._subscription
        if subscription is None:
            return "no stream consumer"
        try:
            info = await asyncio.wait_for(subscription.consumer_info(), ANSWER_SECONDS)
        except NotFoundError:
            return "the stream consumer is gone"
        except Exception as exc:  # a timeout, no responders, a node gone
            return f"the stream consumer does not answer ({str(exc) or type(exc).__name__})"
        behind = info.num_pending or info.delivered.stream_seq > self.stream_seq
        idle = asyncio.get_running_loop().time() - self._progress_at
        if behind and idle > self.stall_seconds:
            return f"the stream consumer delivered nothing for {idle:.0f} s"
        return None

    def readiness(self) -> str | None:
        """What `/ready` says of the event path: the problem, or for RECOVERY_HOLD_SECONDS
        after an outage ended, that it is recovering. A failover can take only milliseconds;
        held this long, every outage shows to a monitor or load balancer polling `/ready`."""
        if self.problem is not None:
            return self.problem
        if self._recovered is not None:
            ended, problem = self._recovered
            if time.monotonic() - ended < RECOVERY_HOLD_SECONDS:
                return f"recovering from: {problem}"
        return None

    def _set_problem(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        if problem is None:
            if self.problem is not None and self.problem != "not started":
                self._recovered = (time.monotonic(), self.problem)
            log.info("event_consumer_live", stream_seq=self.stream_seq)
        else:
            log.warning("event_consumer_down", reason=problem)
        self.problem = problem

    async def _on_message(self, msg: Any) -> None:
        self._progress_at = asyncio.get_running_loop().time()
        try:
            stream_seq, pending = msg.metadata.sequence.stream, msg.metadata.num_pending
        except Exception:  # a message without JetStream metadata
            stream_seq, pending = None, 0
        if stream_seq is not None:
            if stream_seq <= self.stream_seq:
                return  # delivered again by a re-created consumer
            self.stream_seq = stream_seq
        if not self.caught_up.is_set() and pending == 0:
            self.caught_up.set()
        channel = CHANNEL_OF_SUBJECT.get(msg.subject)
        try:
            envelope = Envelope.model_validate_json(msg.data)
        except ValidationError as exc:
            EVENTS_INVALID.inc()
            log.warning("invalid_event_dropped", subject=msg.subject, errors=exc.error_count())
            return
        if channel is None or envelope.channel is not channel:
            EVENTS_INVALID.inc()
            log.warning("event_on_wrong_subject", subject=msg.subject, event_type=envelope.event)
            return
        if envelope.seq <= self.last_seq:
            return  # an event published twice (a relay failover) reaches listeners once
        self.last_seq = envelope.seq
        text = msg.data.decode()
        for listener in self.listeners:
            try:
                listener(envelope.seq, channel, text)
            except Exception as exc:  # one listener's bug must not stop the others
                log.warning("event_listener_failed", error=str(exc) or type(exc).__name__)
