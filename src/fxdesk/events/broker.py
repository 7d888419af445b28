"""The NATS connection (embedded server or external cluster) and the JetStream stream."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from fxdesk.config import Settings
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.events.schemas import SUBJECTS
from fxdesk.logging import get_logger
from fxdesk.ops.metrics import NATS_RECONNECTS

log = get_logger("fxdesk.events.broker")


class Broker:
    """Owns the NATS client; starts the embedded server when no external URL is configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedNats | None = None
        self.nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        # Called after every reconnection (the relay publishes its backlog at once, the hub
        # re-creates its consumer instead of waiting for missed heartbeats).
        self.reconnect_listeners: list[Callable[[], Awaitable[None]]] = []

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("broker not started")
        return self._js

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def _servers(self) -> list[str]:
        if self.settings.nats_url:
            return [url.strip() for url in self.settings.nats_url.split(",") if url.strip()]
        assert self.embedded is not None
        return [self.embedded.url]

    def _options(self) -> dict[str, Any]:
        s = self.settings
        options: dict[str, Any] = {}
        if s.nats_creds_file:
            options["user_credentials"] = str(s.nats_creds_file)
        if s.nats_token:
            options["token"] = s.nats_token
        if s.nats_user:
            options["user"], options["password"] = s.nats_user, s.nats_password
        if s.nats_tls_ca_file or s.nats_tls_cert_file:
            context = ssl.create_default_context(
                cafile=str(s.nats_tls_ca_file) if s.nats_tls_ca_file else None
            )
            if s.nats_tls_cert_file:
                context.load_cert_chain(
                    str(s.nats_tls_cert_file),
                    str(s.nats_tls_key_file) if s.nats_tls_key_file else None,
                )
            options["tls"] = context
        return options

    async def start(self) -> None:
        if not self.settings.nats_url:
            self.embedded = EmbeddedNats(self.settings.data_dir / "nats")
            await self.embedded.start()

        async def on_error(exc: Exception) -> None:
            log.warning("nats_error", error=str(exc) or type(exc).__name__)

        async def on_disconnected() -> None:
            log.warning("nats_disconnected")

        async def on_reconnected() -> None:
            NATS_RECONNECTS.inc()
            url = self.nc.connected_url if self.nc else None
            log.info("nats_reconnected", server=url.netloc if url else None)
            for listener in self.reconnect_listeners:
                try:
                    await listener()
                except Exception as exc:
                    log.warning("reconnect_listener_failed", error=str(exc))

        self.nc = await nats.connect(
            servers=self._servers(),
            name="fxdesk",
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # never give up: the outbox holds events meanwhile
            reconnect_time_wait=1,
            # Tried in the order given: each instance names its nearest node first and fails
            # over to the next (the README's cluster setup).
            dont_randomize=True,
            connect_timeout=5,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            **self._options(),
        )
        self._js = self.nc.jetstream(timeout=5)
        await self.ensure_stream()
        log.info("nats_connected", servers=self._servers(), embedded=self.embedded is not None)

    async def ensure_stream(self) -> None:
        s = self.settings
        config = StreamConfig(
            name=s.nats_stream,
            subjects=list(SUBJECTS.values()),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=float(s.nats_stream_max_age_seconds),
            max_bytes=s.nats_stream_max_bytes,
            duplicate_window=float(s.nats_stream_duplicate_window_seconds),
        )
        try:
            await self.js.stream_info(s.nats_stream)
            await self.js.update_stream(config)
        except NotFoundError:
            await self.js.add_stream(config)

    async def stop(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception as exc:  # a broken connection cannot drain; closing is enough
                log.warning("nats_drain_failed", error=str(exc))
                await self.nc.close()
        if self.embedded is not None:
            await self.embedded.stop()
