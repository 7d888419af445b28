"""The NATS connection (embedded server or external cluster) and the JetStream stream."""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from fxdesk.config import ConfigError, Settings
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.events.schemas import SUBJECTS
from fxdesk.logging import get_logger
from fxdesk.ops.metrics import NATS_RECONNECTS

log = get_logger("fxdesk.events.broker")

API_TIMEOUT_SECONDS = 5.0
REPLICAS_SETTING = "FXDESK_NATS_STREAM_REPLICAS"
# JetStream's answers when it cannot give a stream the replicas asked for: no suitable peers
# for placement, insufficient resources; and replicas > 1 on a server that is not clustered.
_PLACEMENT_ERRORS = frozenset({10005, 10023})
_NOT_CLUSTERED = 10074
_STREAM_NAME_IN_USE = 10058
_NANOSECONDS = 1_000_000_000


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
        if self.embedded is not None:
            # Our own server: its generated password, nothing an operator configures.
            return dict(self.embedded.connect_options)
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
            # With auth: no other local process can publish forged events to our subjects.
            self.embedded = EmbeddedNats(self.settings.data_dir / "nats", auth=True)
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
        self._js = self.nc.jetstream(timeout=API_TIMEOUT_SECONDS)
        try:
            await self.ensure_stream()
        except BaseException:
            await self.stop()  # the app's shutdown never runs for a start-up that failed
            raise
        log.info("nats_connected", servers=self._servers(), embedded=self.embedded is not None)

    def _owned_config(self) -> dict[str, Any]:
        """The stream fields fxdesk decides; every other field stays as the operator set it."""
        s = self.settings
        return {
            "subjects": list(SUBJECTS.values()),
            "retention": "limits",
            "storage": "file",
            "discard": "old",
            "max_age": s.nats_stream_max_age_seconds * _NANOSECONDS,
            "max_bytes": s.nats_stream_max_bytes,
            "duplicate_window": s.nats_stream_duplicate_window_seconds * _NANOSECONDS,
        }

    async def ensure_stream(self) -> None:
        """Create the stream, or bring fxdesk's fields of an existing one up to the settings.

        Replicas are only ever raised: a stream someone scaled up by hand keeps its count.
        The update goes through the raw JetStream API with the stream's own configuration as
        the base, so fields nats-py does not know (or we do not set) are sent back unchanged.
        """
        name = self.settings.nats_stream
        wanted = self.settings.nats_stream_replicas
        try:
            current = await self._api(f"STREAM.INFO.{name}")
        except NotFoundError:
            config = {"name": name, **self._owned_config(), "num_replicas": wanted}
            try:
                await self._apply("CREATE", config, raising=wanted > 1)
            except APIError as exc:
                if exc.err_code != _STREAM_NAME_IN_USE:
                    raise
                # Another instance created it meanwhile, with other settings: update that one.
                current = await self._api(f"STREAM.INFO.{name}")
            else:
                log.info("nats_stream_created", stream=name, replicas=wanted)
                return
        existing: dict[str, Any] = current["config"]
        have = int(existing.get("num_replicas") or 1)
        if wanted < have:
            log.warning(
                "nats_stream_replicas_kept",
                stream=name,
                replicas=have,
                setting=wanted,
                reason=(
                    f"{REPLICAS_SETTING}={wanted} is lower than the {have} replicas stream "
                    f"{name!r} has; fxdesk never lowers them, so it keeps {have} "
                    "(scale the stream down by hand if that is what you want)"
                ),
            )
        elif wanted > have and not (current.get("cluster") or {}).get("name"):
            # Only a clustered server names its cluster here. One that is not would accept the
            # update and store the number, without making a single extra copy of the data.
            raise ConfigError(_not_clustered(name, wanted))
        config = {**existing, **self._owned_config(), "num_replicas": max(have, wanted)}
        if config == existing:
            return
        await self._apply("UPDATE", config, raising=wanted > have)
        log.info("nats_stream_updated", stream=name, replicas=config["num_replicas"])

    async def _apply(self, action: str, config: dict[str, Any], *, raising: bool) -> None:
        """CREATE or UPDATE the stream; when that adds replicas, failing to place them is a
        ConfigError that names the setting."""
        name, wanted = config["name"], config["num_replicas"]
        try:
            await self._api(f"STREAM.{action}.{name}", config)
        except APIError as exc:
            if raising and exc.err_code == _NOT_CLUSTERED:
                raise ConfigError(_not_clustered(name, wanted)) from exc
            if raising and exc.err_code in _PLACEMENT_ERRORS:
                raise ConfigError(_cannot_place(name, wanted, exc.description)) from exc
            raise
        except nats.errors.TimeoutError as exc:
            if not raising:
                raise
            reason = (
                f"JetStream did not answer within {API_TIMEOUT_SECONDS:g} s "
                f"(are {wanted} JetStream servers up and connected to each other?)"
            )
            raise ConfigError(_cannot_place(name, wanted, reason)) from exc

    async def _api(self, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JetStream API request ($JS.API.<subject>); an error answer raises APIError."""
        assert self.nc is not None
        payload = json.dumps(body).encode() if body is not None else b""
        msg = await self.nc.request(f"$JS.API.{subject}", payload, timeout=API_TIMEOUT_SECONDS)
        answer: dict[str, Any] = json.loads(msg.data)
        if "error" in answer:
            APIError.from_error(answer["error"])  # raises the matching subclass
        return answer

    async def stop(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception as exc:  # a broken connection cannot drain; closing is enough
                log.warning("nats_drain_failed", error=str(exc))
                await self.nc.close()
        if self.embedded is not None:
            await self.embedded.stop()


def _not_clustered(stream: str, wanted: int) -> str:
    return (
        f"{REPLICAS_SETTING}={wanted} needs a NATS cluster, but the server holding stream "
        f"{stream!r} is not clustered (the embedded or a single nats-server keeps 1 replica); "
        f"set {REPLICAS_SETTING}=1 or point FXDESK_NATS_URL at a cluster of at least {wanted} "
        "servers"
    )


def _cannot_place(stream: str, wanted: int, reason: str | None) -> str:
    return (
        f"{REPLICAS_SETTING}={wanted}: the NATS cluster cannot keep stream {stream!r} on "
        f"{wanted} servers: {reason or 'no reason given'}; lower the setting or add servers"
    )
