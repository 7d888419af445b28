"""Pure-ASGI middleware: trusted hosts, request id, one access line, metrics and security headers
per request; WebSocket endpoints dispatched by path. Every HTTP request goes on to the router."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from fxdesk.auth.origins import TrustedHosts
from fxdesk.errors import unexpected_error
from fxdesk.logging import get_logger, security_event
from fxdesk.ops.metrics import HTTP_LATENCY, HTTP_REQUESTS
from fxdesk.realtime.protocol import CLOSE_POLICY

access_log = get_logger("fxdesk.access")

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._\-]{1,64}$")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
INVALID_HOST = "Invalid Host header"


def route_template(scope: Scope) -> str:
    """The matched route's path template (low-cardinality metrics label), or "unmatched"."""
    context: object = scope.get("fastapi", {}).get("effective_route_context")
    path: object = getattr(context, "path_format", None) or getattr(
        scope.get("route"), "path", None
    )
    return str(path) if path else "unmatched"


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _VALID_REQUEST_ID.match(value):
            return bytes(value).decode()
    return uuid.uuid4().hex


SocketEndpoint = Callable[[WebSocket], Awaitable[None]]


class RequestContextMiddleware:
    """Binds the request id, writes the access line and metrics; serves `sockets` (path ->
    endpoint) itself and passes every other request on.

    With `hosts`, a request or handshake whose Host header it does not allow is refused first
    (400); with `hsts`, every response carries Strict-Transport-Security.
    """

    def __init__(
        self,
        app: ASGIApp,
        sockets: Mapping[str, SocketEndpoint] | None = None,
        hosts: TrustedHosts | None = None,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.sockets = dict(sockets or {})
        self.hosts = hosts
        self.headers = [*SECURITY_HEADERS, HSTS] if hsts else SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        host_refused = self.hosts is not None and not self.hosts.allows(scope)
        if host_refused:
            security_event("host_refused", host=_host_value(scope), path=scope["path"][:200])
        if scope["type"] == "websocket":
            endpoint = self.sockets.get(scope["path"])
            if host_refused:
                await _refuse_handshake(WebSocket(scope, receive, send))
            elif endpoint is None:
                await self.app(scope, receive, send)  # the router refuses it
            else:
                await endpoint(WebSocket(scope, receive, send))
            return

        started = time.perf_counter()
        status = 500
        responding = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, responding
            if message["type"] == "http.response.start":
                responding = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                headers.extend(self.headers)
                message["headers"] = headers
            await send(message)

        try:
            if host_refused:
                refusal = JSONResponse({"detail": INVALID_HOST}, 400)
                await refusal(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # Answered here, not re-raised: Starlette's outer error middleware would hand it on
            # to the server, which logs the whole traceback a second time.
            error = unexpected_error(scope["method"], scope["path"], exc)
            if not responding:
                await error(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route_path = route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route_path, str(status)).inc()
            HTTP_LATENCY.labels(method, route_path).observe(elapsed)
            access_log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=scope["client"][0] if scope.get("client") else None,
            )


def _host_value(scope: Scope) -> str | None:
    """The Host header as sent, cut short, for the log line of a refusal."""
    for name, value in scope["headers"]:
        if name == b"host":
            return bytes(value[:100]).decode("latin-1")
    return None


async def _refuse_handshake(websocket: WebSocket) -> None:
    """Refuse a handshake before accepting it: 400 with the JSON reason where the server can
    send a response, else the server's plain 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"detail": INVALID_HOST}, 400))
    else:
        await websocket.close(code=CLOSE_POLICY)
