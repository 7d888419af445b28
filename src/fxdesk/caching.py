"""What an instance remembers of the database, kept coherent by the events it already consumes.

A `CoherentCache` holds values derived from the database (an encoded page of a read route, a
session's user) under the event channels that change them. It forgets everything of a channel
- at once when this instance commits an event of that channel (`Database.outbox_listeners`,
  before the response of the change goes out: read-your-writes on the instance written to);
- when an event of that channel reaches this instance from the stream (milliseconds after a
  write on any other instance);
- and it neither answers from nor fills its memory while the event path is down or recovering,
  so an event it may have missed cannot leave it stale.
With `max_age`, a value is also read again once it is that old, whatever the events say.

A value whose load was under way when the cache forgot is handed to the request that asked for
it but not kept. The requests that miss one key together share one load.

`Pages` is the set of caches of the read routes, one per channel, and `etag_response` answers a
remembered page as a conditional request (ETag, If-None-Match, 304).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from fxdesk.db import Database
from fxdesk.events.consumer import EventConsumer
from fxdesk.events.schemas import Channel

V = TypeVar("V")

CACHE_CONTROL = "private, no-cache"  # per user, and always revalidated: the ETag makes it cheap


@dataclass(frozen=True, slots=True)
class Encoded:
    """A response body encoded once, with its ETag."""

    body: bytes
    etag: str


def encode(payload: Any) -> Encoded:
    """A pydantic model, JSON-ready data or JSON already encoded (bytes), as compact UTF-8
    JSON with its ETag."""
    if isinstance(payload, bytes):
        body = payload
    elif isinstance(payload, BaseModel):
        body = payload.model_dump_json().encode()
    else:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Encoded(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" matches "x"."""
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def etag_response(request: Request, encoded: Encoded, status_code: int = 200) -> Response:
    """`encoded` as the answer, or 304 when the client already holds it."""
    headers = {"ETag": encoded.etag, "Cache-Control": CACHE_CONTROL}
    if_none_match = request.headers.get("if-none-match")
    if status_code == 200 and if_none_match and _matches(if_none_match, encoded.etag):
        return Response(status_code=304, headers=headers)
    return Response(
        encoded.body, status_code=status_code, media_type="application/json", headers=headers
    )


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a shared load's failure as seen: its waiters may all have gone."""
    if not future.cancelled():
        future.exception()


class CoherentCache(Generic[V]):
    def __init__(
        self, channels: Iterable[Channel], *, max_age: float | None = None, size: int = 4096
    ) -> None:
        self.channels = frozenset(channels)
        self.max_age = max_age
        self.size = size
        self._values: dict[Hashable, tuple[V, float]] = {}
        self._loading: dict[Hashable, tuple[int, asyncio.Future[V]]] = {}
        self._generation = 0  # bumped whenever everything is forgotten
        self._events: EventConsumer | None = None
        self._database: Database | None = None

    def follow(self, database: Database, events: EventConsumer) -> None:
        """Start remembering: forget on `database`'s commits and `events`' events."""
        self._database, self._events = database, events
        database.outbox_listeners.append(self._on_commit)
        events.listeners.append(self._on_event)

    def unfollow(self) -> None:
        if self._database is not None and self._on_commit in self._database.outbox_listeners:
            self._database.outbox_listeners.remove(self._on_commit)
        if self._events is not None and self._on_event in self._events.listeners:
            self._events.listeners.remove(self._on_event)
        self._database = self._events = None
        self.forget()

    def forget(self) -> None:
        self._generation += 1
        self._values.clear()

    def _on_commit(self, channels: frozenset[str]) -> None:
        if not self.channels.isdisjoint(channels):
            self.forget()

    def _on_event(self, _seq: int, channel: Channel, _text: str) -> None:
        if channel in self.channels:
            self.forget()

    @property
    def usable(self) -> bool:
        """Only while the event path is live is what is remembered known to be current."""
        return self._events is not None and self._events.readiness() is None

    async def get(
        self, key: Hashable, load: Callable[[], Awaitable[V]], *, fresh: bool = False
    ) -> V:
        """The value of `key`, remembered or loaded now (`fresh`: loaded now in any case).
        A load that returns None, or raises, is not remembered."""
        now = time.monotonic()
        usable = self.usable
        if usable and not fresh:
            known = self._values.get(key)
            if known is not None and (self.max_age is None or now - known[1] < self.max_age):
                return known[0]
        generation = self._generation
        if fresh or not usable:
            value = await load()
        else:
            value = await self._shared_load(key, generation, load)
        if value is not None and usable and generation == self._generation:
            if len(self._values) >= self.size:
                self._values.clear()  # rare: everything is loaded again once
            self._values[key] = (value, now)
        return value

    async def _shared_load(
        self, key: Hashable, generation: int, load: Callable[[], Awaitable[V]]
    ) -> V:
        """`load()`, shared by the requests that miss `key` together. The first request
        runs it itself, with no task created for it (a miss nobody shares, the common case,
        costs nothing extra); the others wait for its outcome. If the first is cancelled
        (its client went away), a waiter that was not cancelled loads in its place."""
        while True:
            loading = self._loading.get(key)
            if loading is None or loading[0] != generation or loading[1].done():
                break
            try:
                return await asyncio.shield(loading[1])
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not loading[1].cancelled() or (task is not None and task.cancelling()):
                    raise
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)
        mine = (generation, future)
        self._loading[key] = mine
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if self._loading.get(key) is mine:
                del self._loading[key]


class Pages:
    """The encoded answers of the read routes, one cache per channel that changes them."""

    def __init__(self, size: int = 2048) -> None:
        self.by_channel = {
            channel: CoherentCache[Encoded](channel_set(channel), size=size) for channel in Channel
        }
        # Parts several pages share (e.g. the count of a filter, whatever page is asked).
        self.parts_by_channel = {
            channel: CoherentCache[Any](channel_set(channel), size=size) for channel in Channel
        }

    def _caches(self) -> list[CoherentCache[Any]]:
        return [*self.by_channel.values(), *self.parts_by_channel.values()]

    def follow(self, database: Database, events: EventConsumer) -> None:
        for cache in self._caches():
            cache.follow(database, events)

    def unfollow(self) -> None:
        for cache in self._caches():
            cache.unfollow()

    async def part(self, channel: Channel, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        """A value several pages of `channel` share, remembered like a page."""
        value: V = await self.parts_by_channel[channel].get(key, load)
        return value

    async def page(
        self,
        channel: Channel,
        key: Hashable,
        build: Callable[[], Awaitable[Any]],
        etag: Callable[[Any], str] | None = None,
    ) -> Encoded:
        """The encoded page `key` of `channel`: remembered, or `build()`'s payload encoded,
        its ETag a hash of the body or `etag(payload)`."""

        async def load() -> Encoded:
            payload = await build()
            encoded = encode(payload)
            return encoded if etag is None else Encoded(encoded.body, etag(payload))

        return await self.by_channel[channel].get(key, load)


def channel_set(channel: Channel) -> frozenset[Channel]:
    """A page of `channel` is stale when its channel changes, or anyone's access does (which
    is part of the key where it matters, and rare)."""
    return frozenset({channel, Channel.access})
