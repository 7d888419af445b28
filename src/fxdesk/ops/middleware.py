"""Pure-ASGI middleware: request id, one access line, metrics and security headers per request;
WebSocket endpoints dispatched by path."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from fxdesk.errors import unexpected_error
from fxdesk.logging import get_logger
from fxdesk.ops.metrics import HTTP_LATENCY, HTTP_REQUESTS

access_log = get_logger("fxdesk.access")

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._\-]{1,64}$")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


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
# A read answered before routing when it can be; None sends the request on to the router.
FastRead = Callable[[Request], Awaitable[Response | None]]


class RequestContextMiddleware:
    """Binds the request id, writes the access line and metrics; serves `sockets` (path ->
    endpoint) itself, offers GETs of `reads` paths to their fast read, passes the rest on."""

    def __init__(
        self,
        app: ASGIApp,
        sockets: Mapping[str, SocketEndpoint] | None = None,
        reads: Mapping[str, FastRead] | None = None,
    ) -> None:
        self.app = app
        self.sockets = dict(sockets or {})
        self.reads = reads if reads is not None else {}  # not copied: tests may switch one off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if scope["type"] == "websocket":
            endpoint = self.sockets.get(scope["path"])
            if endpoint is None:
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
                headers.extend(SECURITY_HEADERS)
                message["headers"] = headers
            await send(message)

        answered = False
        try:
            read = self.reads.get(scope["path"]) if scope["method"] == "GET" else None
            response = None if read is None else await read(Request(scope, receive))
            if response is None:
                await self.app(scope, receive, send_with_headers)
            else:
                answered = True
                await response(scope, receive, send_with_headers)
        except Exception as exc:
            # Answered here, not re-raised: Starlette's outer error middleware would hand it on
            # to the server, which logs the whole traceback a second time.
            error = unexpected_error(scope["method"], scope["path"], exc)
            if not responding:
                await error(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route_path = scope["path"] if answered else route_template(scope)
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
