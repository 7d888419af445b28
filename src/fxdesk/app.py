"""The FastAPI application: create_app() wires settings, database, routers and the lifespan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fxdesk.auth.origins import TrustedHosts
from fxdesk.auth.passwords import Passwords
from fxdesk.auth.ratelimit import LoginLimiter, SlidingWindowCounter
from fxdesk.auth.router import router as auth_router
from fxdesk.auth.service import AccountService
from fxdesk.auth.tokens import TokenCodec
from fxdesk.caching import Pages
from fxdesk.chat.router import router as chat_router
from fxdesk.compat.auth import router as seed_auth_router
from fxdesk.compat.rates import routers as seed_rates_routers
from fxdesk.compat.rates import seed_rates_socket
from fxdesk.compat.tasks import general_chat
from fxdesk.compat.tasks import router as seed_tasks_router
from fxdesk.config import ConfigError, Settings
from fxdesk.db import Database
from fxdesk.demo import seed_demo
from fxdesk.errors import error_responses, install_error_handlers
from fxdesk.events.broker import Broker
from fxdesk.events.consumer import EventConsumer
from fxdesk.events.relay import OutboxRelay
from fxdesk.logging import configure_logging, get_logger
from fxdesk.ops.limits import BodyLimitMiddleware
from fxdesk.ops.middleware import RequestContextMiddleware
from fxdesk.ops.router import router as ops_router
from fxdesk.rates.router import router as rates_router
from fxdesk.rates.runtime import RatesRuntime
from fxdesk.realtime.hub import Hub
from fxdesk.realtime.protocol import CLOSE_SERVICE_RESTART
from fxdesk.realtime.router import AdmittedEndpoint, admitted, live
from fxdesk.serving import settle_garbage_collector
from fxdesk.tasks.router import router as tasks_router
from fxdesk.users.lookup import UserLookup
from fxdesk.users.router import router as users_router
from fxdesk.web.router import install_web

log = get_logger("fxdesk.app")

# Every WebSocket endpoint, each served behind the same admission check (`admitted`).
SOCKETS: dict[str, AdmittedEndpoint] = {
    "/api/v1/ws": live,
    "/ws/rates": seed_rates_socket,
    "/tasks/general_chat": general_chat,
}


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or Settings()
    settings.prepare()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database: Database = app.state.database
        if migrate:
            await database.migrate()
        if settings.demo:
            await seed_demo(database, app.state.accounts)
        broker: Broker = app.state.broker
        try:
            await broker.start()
        except ConfigError as exc:
            # One plain line before uvicorn's traceback, in the CLI's words.
            log.critical("configuration_error", error=str(exc))
            raise
        # One event path: the consumer follows the stream; the hub (this instance's sockets)
        # and the rates cache listen to it.
        events = EventConsumer(broker)
        app.state.events = events
        hub = Hub(settings.ws_replay_buffer, events.caught_up)
        app.state.hub = hub
        events.listeners.append(hub.publish_local)
        rates: RatesRuntime = app.state.rates
        await rates.start(events)  # loads the rates cache; polls CBR unless rates_autostart is off
        await events.start()
        relay = OutboxRelay(database, broker, app.state.instance_id, settings.relay_sweep_seconds)
        app.state.relay = relay
        await relay.start()
        app.state.user_lookup.start(events)
        app.state.pages.follow(database, events)
        if settings.is_production and settings.public_url is None:
            log.warning(
                "public_url_unset",
                hint="set FXDESK_PUBLIC_URL: browsers are only trusted from the listening address",
            )
        log.info("started", database=database.engine.url.render_as_string(hide_password=True))
        try:
            yield
        finally:
            await hub.close_all(code=CLOSE_SERVICE_RESTART, reason="server shutting down")
            app.state.pages.unfollow()
            await rates.stop()  # before the relay, so it still publishes the last run's events
            await relay.stop()
            await events.stop()
            await broker.stop()
            await app.state.user_lookup.close()
            await database.dispose()
            log.info("stopped")

    app = FastAPI(
        title="fxdesk",
        version="0.1.0",
        summary="Live CBR exchange rates, a shared task board and chat",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are fxdesk's own (src/fxdesk/web/docs.py): no CDN
        redoc_url=None,
        # Any request may be refused before its route runs: a body that is not UTF-8 (400), or
        # one over FXDESK_MAX_BODY_BYTES (413).
        responses=error_responses(400, 413),
        # Metrics are our own (Prometheus, /metrics); FastAPI's OpenTelemetry hooks would only
        # ask on every request whether a provider has appeared.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.instance_id = uuid.uuid4().hex
    app.state.broker = Broker(settings)
    app.state.database = Database(
        settings.resolved_database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    app.state.user_lookup = UserLookup(app.state.database)
    app.state.pages = Pages()  # the read routes' answers (fxdesk.caching)
    app.state.tokens = TokenCodec(
        settings.jwt_secret, settings.jwt_audience, settings.session_lifetime_seconds
    )
    app.state.accounts = AccountService(
        passwords=Passwords(settings.password_hash_concurrency),
        limiter=LoginLimiter(
            settings.login_max_failures_per_account,
            settings.login_max_failures_per_address,
            settings.login_failure_window_seconds,
            per_account_total=settings.login_max_failures_per_account_total,
        ),
    )

    app.state.chat_limiter = SlidingWindowCounter(
        "chat", settings.chat_messages_per_window, settings.chat_window_seconds
    )

    app.state.rates = RatesRuntime(settings, app.state.database, app.state.instance_id)

    # Routing tries routes in order, router by router: the hot reads (rates, convert) go first,
    # and each domain router hangs off the app itself (every level of nesting is another match).
    for router in (rates_router, auth_router, users_router, ops_router, tasks_router, chat_router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(ops_router)
    app.include_router(seed_auth_router)
    app.include_router(seed_tasks_router)
    for seed_rates_router in seed_rates_routers:
        app.include_router(seed_rates_router)
    install_web(app)  # GET / (the page), /docs, /redoc and /static

    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    # The WebSocket endpoints are dispatched by path in the outer middleware rather than through
    # the router: a socket lives for hours, and every framework layer it passes stays suspended
    # on its stack for that long (about 12 KB of an idle connection's 38 KB before this).
    app.add_middleware(
        RequestContextMiddleware,
        sockets={path: admitted(endpoint) for path, endpoint in SOCKETS.items()},
        hosts=TrustedHosts(settings),
        hsts=settings.cookie_secure,  # Secure cookies mean HTTPS: browsers should only use it
    )
    return app


def app_factory() -> FastAPI:
    """Entry point of `fxdesk serve` (and `uvicorn --factory fxdesk.app:app_factory`): the
    app, with the serving process tuned once it has started (see fxdesk.serving)."""
    settings = Settings()
    configure_logging(settings)
    app = create_app(settings)
    started = app.router.lifespan_context

    @asynccontextmanager
    async def tuned(app: FastAPI) -> AsyncIterator[None]:
        async with started(app):
            settle_garbage_collector()
            yield

    app.router.lifespan_context = tuned
    return app
