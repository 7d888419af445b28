"""WS /api/v1/ws: the live channel (origin and session checked at the handshake)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.applications import Starlette

from fxdesk.auth.dependencies import authenticate_token, credential_from, session_alive
from fxdesk.auth.origins import origin_allowed
from fxdesk.auth.sessions import Authenticated
from fxdesk.chat.service import post_message
from fxdesk.config import Settings
from fxdesk.deps import hub_of, settings_of, tokens_of, user_lookup_of
from fxdesk.errors import AppError, NotAuthenticated
from fxdesk.events.schemas import Channel
from fxdesk.logging import get_logger, security_event
from fxdesk.realtime.hub import Client, Hub
from fxdesk.realtime.protocol import (
    CLOSE_POLICY,
    CLOSE_SESSION_ENDED,
    CLOSE_SLOW_CONSUMER,
    CLOSE_UNSUPPORTED_DATA,
    ChatOp,
    PingOp,
    SubscribeOp,
    client_op,
)
from fxdesk.realtime.wire import Wire
from fxdesk.users.models import User

log = get_logger("fxdesk.realtime")

KERNEL_SEND_BUFFER = 65_536


async def authenticate_websocket(websocket: WebSocket) -> Authenticated | None:
    """The session of a handshake that passes the origin and session checks, else None."""
    settings: Settings = settings_of(websocket)
    if not origin_allowed(websocket, settings):
        security_event("ws_origin_refused", origin=websocket.headers.get("origin"))
        return None
    credential = credential_from(websocket.headers.get("authorization"), websocket.cookies)
    if credential is None:
        security_event("ws_unauthenticated")
        return None
    try:
        return await authenticate_token(
            user_lookup_of(websocket), tokens_of(websocket), credential.token
        )
    except AppError:
        security_event("ws_session_refused")
        return None


async def refuse(websocket: WebSocket, reason: str) -> None:
    """Accept only to close with 1008, so the client learns the reason (a 403 says nothing)."""
    await websocket.accept()
    await websocket.close(code=CLOSE_POLICY, reason=reason)


async def admit(websocket: WebSocket) -> Authenticated | None:
    """The handshake's session; a refused handshake is closed (1008) and gives None."""
    auth = await authenticate_websocket(websocket)
    if auth is None:
        await refuse(websocket, "origin or session refused")
    return auth


async def post_chat(app: Starlette, user: User, text: str) -> None:
    """Chat sent on a socket of `app`: stored, and its event queued, in a transaction of its
    own (what the REST route does in the request's)."""
    state = app.state
    async with state.database.session() as session:
        await post_message(session, user, text, state.chat_limiter)


async def as_user(websocket: WebSocket, auth: Authenticated) -> User:
    """The socket's user as the database knows them now, for an action it asks for (chat);
    NotAuthenticated once its session has ended, even before the hub has closed it."""
    user = await session_alive(user_lookup_of(websocket), auth)
    if user is None:
        raise NotAuthenticated("Session ended")
    return user


@asynccontextmanager
async def hub_client(
    websocket: WebSocket,
    auth: Authenticated,
    name: str,
    *,
    channels: frozenset[Channel] | None = None,
    transform: Callable[[str], str | None] | None = None,
) -> AsyncIterator[Client]:
    """Accept the socket and serve it from the hub (with its pump) until the block ends."""
    hub: Hub = hub_of(websocket)
    user = auth.user
    await websocket.accept()
    settings: Settings = settings_of(websocket)
    wire = Wire.of(websocket)
    if wire is not None:
        wire.bound_kernel_buffer(KERNEL_SEND_BUFFER)
    client = Client(
        send=websocket.send_text,
        limit=settings.ws_queue_size,
        byte_limit=settings.ws_queue_bytes,
        user_id=user.id,
        session_id=auth.session_id,
        expires_at=auth.expires_at.timestamp(),
        transform=transform,
        # Frames are rewritten per client by a transform, so only plain clients share them.
        wire=wire if transform is None else None,
    )
    hub.add(client)
    if await session_alive(user_lookup_of(websocket), auth) is None:
        # Ended between the handshake's check and joining the hub: its event may have passed.
        hub.end(client, CLOSE_SESSION_ENDED, "session ended")
    if channels is not None:
        hub.subscribe(client, channels, since=None)
    log.info("ws_connected", socket=name, user_id=user.id)
    try:
        yield client
    finally:
        hub.remove(client)
        if client.sender is not None:
            client.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await client.sender
        log.info("ws_disconnected", socket=name, user_id=user.id, slow=client.slow)


AdmittedEndpoint = Callable[[WebSocket, Authenticated], Awaitable[None]]


def admitted(endpoint: AdmittedEndpoint) -> Callable[[WebSocket], Awaitable[None]]:
    """`endpoint` behind the one admission check every socket has (origin, then session)."""

    async def serve(websocket: WebSocket) -> None:
        auth = await admit(websocket)
        if auth is not None:
            await endpoint(websocket, auth)

    return serve


async def live(websocket: WebSocket, auth: Authenticated) -> None:
    hub: Hub = hub_of(websocket)
    user = auth.user
    async with hub_client(websocket, auth, "live") as client:
        client.control(
            {
                "type": "hello",
                "user": {"id": user.id, "username": user.username},
                "seq": hub.last_seq,
            }
        )

        async def on_text(text: str) -> None:
            await _handle(text, websocket, client, hub, auth)

        await receive_loop(websocket, client, on_text)


async def receive_loop(
    websocket: WebSocket, client: Client, on_text: Callable[[str], Awaitable[None]]
) -> None:
    """Read frames until the peer leaves or the hub drops the client (slow, shutting down).

    The read runs in the connection's own task, with no helper task per frame: an idle socket
    costs only what it must. Dropping the client cancels this task, which then closes the
    socket with the reason.
    """
    reader = asyncio.current_task()
    assert reader is not None
    client.reader = reader
    try:
        while not client.dropped:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                log.info("ws_binary_frame_refused", user_id=client.user_id)
                client.closing = (CLOSE_UNSUPPORTED_DATA, "binary frames are not accepted")
                if client.sender is not None:
                    client.sender.cancel()
                break
            await on_text(text)
    except (WebSocketDisconnect, RuntimeError):
        return
    except asyncio.CancelledError:
        if not client.dropped:
            raise  # cancelled from outside: not ours to absorb
        reader.uncancel()
    finally:
        client.reader = None
    if client.closing:
        await _close_quietly(websocket, *client.closing)
    elif client.slow:
        # Its socket buffers are full: the close frame goes out once it has read what it has.
        # Wait a while for that, so it learns why (1013) instead of seeing EOF.
        await _close_quietly(
            websocket, CLOSE_SLOW_CONSUMER, "slow consumer: resume with since", wait=15
        )


async def _handle(
    text: str, websocket: WebSocket, client: Client, hub: Hub, auth: Authenticated
) -> None:
    try:
        op = client_op.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        client.control(
            {"type": "error", "detail": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"}
        )
        return
    if isinstance(op, SubscribeOp):
        await hub.wait_caught_up(limit_seconds=10)
        hub.subscribe(client, frozenset(op.channels), op.since)
    elif isinstance(op, PingOp):
        client.control({"type": "pong", "seq": hub.last_seq})
    elif isinstance(op, ChatOp):
        try:
            await post_chat(websocket.app, await as_user(websocket, auth), op.text)
        except AppError as exc:
            client.control({"type": "error", "detail": exc.detail})


async def _close_quietly(websocket: WebSocket, code: int, reason: str, wait: float = 2) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), wait)
