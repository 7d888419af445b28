"""Pure-ASGI request body limit: a body over `max_body_bytes` gets 413 before it is parsed."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = "Request body too large"


class BodyLimitMiddleware:
    """Refuses an HTTP request whose body exceeds `max_body_bytes` with 413 `{"detail": ...}`.

    A Content-Length over the limit is refused at once, nothing read. A body without one
    (chunked) is counted as it is read: once past the limit the application is told the client
    has gone (`http.disconnect`), the 413 goes out, and whatever the application still sends
    is dropped. WebSockets pass untouched (their frames have their own limit).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large(scope, receive, send)
            return

        received = 0
        refused = False
        responding = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    refused = True
                    if not responding:
                        await _too_large(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responding
            if refused:
                return  # the 413 has been sent; the application's answer comes too late
            if message["type"] == "http.response.start":
                responding = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The application failed on the body it was refused (a "disconnect" mid-parse);
            # the client already has its 413.


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": TOO_LARGE}, status_code=413)(scope, receive, send)
