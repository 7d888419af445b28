"""The hub: keeps a replay window of the event stream and fans events out to this instance's
WebSocket clients through bounded per-client queues (events/consumer.py feeds it)."""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fxdesk.events.schemas import SUBJECTS, Channel
from fxdesk.logging import get_logger
from fxdesk.ops.metrics import (
    EVENTS_DELIVERED,
    WS_CONNECTIONS,
    WS_REPLAYS,
    WS_RESYNCS,
    WS_SLOW_DISCONNECTS,
)
from fxdesk.realtime.protocol import CLOSE_ACCESS_CHANGED, CLOSE_SESSION_ENDED
from fxdesk.realtime.wire import Wire, text_frame
from fxdesk.tasking import wait_event

log = get_logger("fxdesk.realtime.hub")

SENDER_LINGER = 5.0  # seconds a sender waits for more frames before it ends


@dataclass(eq=False, slots=True)
class Client:
    """One WebSocket connection's delivery state; `send` writes one text frame through ASGI.

    With a `wire`, a live event is written straight to the socket, already framed, whenever
    nothing waits before it. Everything else (protocol messages, replays, frames arriving while
    the transport is above its high-water mark, and every frame of a client without a wire or
    with a `transform`) goes through `pending`, drained in order by a sender task. That task
    stays a few seconds after the queue empties when there is no wire, so a steady stream of
    events does not start one task per frame; an idle socket owns no task besides its reader.
    """

    send: Callable[[str], Awaitable[None]]
    limit: int  # live frames that may wait for this client
    byte_limit: int = 1 << 20  # and bytes, counting what its transport still holds
    live_bytes: int = 0  # bytes of the live events in `pending`
    live_count: int = 0  # how many of `pending` are live events (the rest: replay, protocol)
    user_id: int | None = None
    session_id: str | None = None
    expires_at: float | None = None  # Unix time the session ends: the socket closes then
    expiry: asyncio.TimerHandle | None = None
    channels: frozenset[Channel] = frozenset()
    # (text, is a live event): only live events count against the limits
    pending: deque[tuple[str, bool]] = field(default_factory=deque)
    slow: bool = False
    closing: tuple[int, str] | None = None
    sender: asyncio.Task[None] | None = None
    wake: asyncio.Future[None] | None = None
    # The connection's reading task: stopped when the client is dropped (slow, shutdown).
    reader: asyncio.Task[Any] | None = None
    # Adapters (the seed's plain-text chat, /ws/rates) reshape or drop frames on the way out;
    # applied by the sender, so fan-out itself stays one append per client.
    transform: Callable[[str], str | None] | None = None
    wire: Wire | None = None

    def offer(self, text: str, frame: bytes) -> bool:
        """Send or queue a live event (`frame` is `text` framed); False when the client is too
        far behind to keep."""
        wire, sender = self.wire, self.sender
        idle = not self.pending and (sender is None or sender.done())
        if wire is not None and idle and wire.ready:
            wire.write(frame)
            return True
        if self.live_count >= self.limit or (
            self.live_bytes + len(text) + (wire.buffered if wire is not None else 0)
            > self.byte_limit
        ):
            return False
        self.pending.append((text, True))
        self.live_count += 1
        self.live_bytes += len(text)
        self.nudge()
        return True

    def control(self, message: dict[str, Any]) -> None:
        """Queue a protocol message (hello, pong, resync); never counted against the limit."""
        self.pending.append((json.dumps(message, separators=(",", ":")), False))
        self.nudge()

    def nudge(self) -> None:
        """Make sure a sender runs while frames wait (and none once the client is dropped)."""
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)
        elif self.pending and (self.sender is None or self.sender.done()) and not self.dropped:
            self.sender = asyncio.get_running_loop().create_task(self._send_pending())

    @property
    def dropped(self) -> bool:
        return self.slow or self.closing is not None

    def drop(self) -> None:
        """Stop sending and stop the reader, which then closes the socket with the reason."""
        if self.sender is not None:
            self.sender.cancel()
        if self.reader is not None and not self.reader.done():
            self.reader.cancel()

    async def _send_pending(self) -> None:
        """Replayed frames first, then live ones, in order; without a wire it ends after
        SENDER_LINGER idle, with one as soon as the queue is empty."""
        loop = asyncio.get_running_loop()
        while True:
            while self.pending:
                item, live = self.pending.popleft()
                if live:
                    self.live_count -= 1
                    self.live_bytes -= len(item)
                text: str | None = item
                if self.transform is not None:
                    text = self.transform(text)  # type: ignore[arg-type]
                if text is not None:
                    try:
                        await self.send(text)
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # the socket is gone: the reader ends the connection
                        self.pending.clear()
                        self.live_count = self.live_bytes = 0
                        return
            if self.wire is not None:
                return
            self.wake = loop.create_future()
            try:
                async with asyncio.timeout(SENDER_LINGER):
                    await self.wake
            except TimeoutError:
                return
            finally:
                self.wake = None


class Hub:
    """This instance's sockets: fed by the event consumer (`publish_local` is its listener),
    it keeps the replay window and fans each event out to the subscribers of its channel."""

    def __init__(self, replay_size: int, caught_up: asyncio.Event | None = None) -> None:
        self.window: deque[tuple[int, Channel, str]] = deque(maxlen=replay_size)
        self.last_seq = 0
        self.subscribers: dict[Channel, set[Client]] = {channel: set() for channel in Channel}
        self.clients: set[Client] = set()
        self.by_user: dict[int, set[Client]] = {}
        # Set by the consumer once the stream read at start is through: before that, a
        # `since` could be answered from a window that is still filling.
        self.caught_up = caught_up if caught_up is not None else asyncio.Event()

    async def wait_caught_up(self, limit_seconds: float) -> None:
        await wait_event(self.caught_up, limit_seconds)

    def publish_local(self, seq: int, channel: Channel, text: str) -> None:
        """Record an event from the stream and queue it to every subscriber of its channel."""
        if seq <= self.last_seq:
            return  # already seen: a redelivery can never reach a client twice
        self.last_seq = seq
        if channel is Channel.access:
            self._access_event(text)
            return
        self.window.append((seq, channel, text))
        delivered = 0
        frame = text_frame(text.encode())
        for client in self.subscribers[channel]:
            if client.offer(text, frame):
                delivered += 1
            elif not client.slow:
                # Its pump may be stuck on a full socket: cancelling it lets the connection
                # handler close the socket, while every other client goes on receiving.
                client.slow = True
                WS_SLOW_DISCONNECTS.inc()
                client.drop()
        EVENTS_DELIVERED.inc(delivered)

    def _access_event(self, text: str) -> None:
        """A session ended or an account's access changed: close the sockets it concerns."""
        event: dict[str, Any] = json.loads(text)
        clients = list(self.by_user.get(event.get("user_id"), ()))  # type: ignore[arg-type]
        if event.get("event") == "session_ended":
            sessions, keep = event.get("sessions"), event.get("keep")
            for client in clients:
                if client.session_id == keep or (
                    sessions is not None and client.session_id not in sessions
                ):
                    continue
                self.end(client, CLOSE_SESSION_ENDED, "session ended")
        elif event.get("event") == "access_changed":
            for client in clients:
                self.end(client, CLOSE_ACCESS_CHANGED, "access changed: reconnect")

    def end(self, client: Client, code: int, reason: str) -> None:
        """Close one socket with `code` (its reader sends the close frame)."""
        if client.closing is None:
            client.closing = (code, reason)
            client.drop()

    async def close_all(self, code: int, reason: str) -> None:
        """Graceful shutdown: every socket of this instance is closed with `code`."""
        clients = list(self.clients)
        for client in clients:
            client.closing = (code, reason)
            client.drop()
        for _ in range(50):
            if not self.clients:
                return
            await asyncio.sleep(0.02)

    def add(self, client: Client) -> None:
        self.clients.add(client)
        if client.user_id is not None:
            self.by_user.setdefault(client.user_id, set()).add(client)
        if client.expires_at is not None:
            client.expiry = asyncio.get_running_loop().call_later(
                max(0.0, client.expires_at - time.time()),
                self.end,
                client,
                CLOSE_SESSION_ENDED,
                "session expired",
            )
        WS_CONNECTIONS.inc()

    def remove(self, client: Client) -> None:
        if client in self.clients:
            self.clients.discard(client)
            WS_CONNECTIONS.dec()
        if client.expiry is not None:
            client.expiry.cancel()
            client.expiry = None
        mine = self.by_user.get(client.user_id)  # type: ignore[arg-type]
        if mine is not None:
            mine.discard(client)
            if not mine:
                del self.by_user[client.user_id]  # type: ignore[arg-type]
        for subscribers in self.subscribers.values():
            subscribers.discard(client)

    def subscribe(self, client: Client, channels: frozenset[Channel], since: int | None) -> None:
        """Switch `client` to `channels`; with `since`, queue what it missed first.

        Runs without awaiting, so no live event can slip between the replay and the switch.
        """
        for channel in Channel:
            if channel in channels:
                self.subscribers[channel].add(client)
            else:
                self.subscribers[channel].discard(client)
        client.channels = channels
        if since is None or since >= self.last_seq:
            if since is not None and since > self.last_seq:
                # The client saw events this server never had (a reset server): start over.
                self._resync(client, since)
                return
            client.control({"type": "subscribed", "channels": sorted(channels), "seq": since})
            return
        oldest = self.window[0][0] if self.window else self.last_seq + 1
        if since < oldest - 1:
            self._resync(client, since)
            return
        start = bisect.bisect_right(self.window, since, key=lambda item: item[0])
        replay = [text for seq, ch, text in list(self.window)[start:] if ch in channels]
        client.control({"type": "subscribed", "channels": sorted(channels), "seq": since})
        client.pending.extend((text, False) for text in replay)
        client.nudge()
        WS_REPLAYS.inc(len(replay))

    def _resync(self, client: Client, since: int) -> None:
        WS_RESYNCS.inc()
        client.control({"type": "resync", "since": since, "seq": self.last_seq})


__all__ = ["SUBJECTS", "Client", "Hub"]
