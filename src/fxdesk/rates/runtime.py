"""One instance's rates machinery: the cache, the scheduler, and how they hook into the app."""

from __future__ import annotations

import datetime as dt

import httpx

from fxdesk.config import Settings
from fxdesk.db import Database, utcnow
from fxdesk.events.consumer import EventConsumer
from fxdesk.rates.cache import RatesCache
from fxdesk.rates.cbr.client import CbrClient
from fxdesk.rates.cbr.configured import make_cbr_client
from fxdesk.rates.scheduler import RatesScheduler
from fxdesk.rates.tables import moscow_today


class RatesRuntime:
    """Built by create_app; listens to the event consumer, stopped before the relay.

    `cbr_transport` and `apilayer_transport` let tests (and nothing else) put a fake upstream
    under the real HTTP clients; `clock` lets them move "now".
    """

    def __init__(self, settings: Settings, database: Database, instance_id: str) -> None:
        self.settings = settings
        self.database = database
        self.cbr_transport: httpx.AsyncBaseTransport | None = None
        self.apilayer_transport: httpx.AsyncBaseTransport | None = None
        self.clock = utcnow
        self.cache = RatesCache(database, clock=lambda: self.clock())
        self.scheduler = RatesScheduler(
            database,
            settings,
            holder=instance_id,
            client_factory=self.cbr_client,
            after_run=self.cache.reload,
            today=self.today,
        )
        self._events: EventConsumer | None = None

    def cbr_client(self) -> CbrClient:
        return make_cbr_client(self.settings, self.cbr_transport)

    def today(self) -> dt.date:
        return moscow_today(self.clock())

    async def start(self, events: EventConsumer) -> None:
        self._events = events
        events.listeners.append(self.cache.on_event)
        await self.cache.start()
        await self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.cache.stop()
        if self._events is not None and self.cache.on_event in self._events.listeners:
            self._events.listeners.remove(self.cache.on_event)
