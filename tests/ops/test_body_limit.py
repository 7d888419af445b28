"""Request bodies over FXDESK_MAX_BODY_BYTES get 413 before they are parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.types import Message, Receive, Scope, Send

from fxdesk.config import Settings
from fxdesk.ops.limits import BodyLimitMiddleware
from tests.conftest import ClientFactory
from tests.factories import PASSWORD

LIMIT = 1_048_576


def test_the_default_limit_is_one_mebibyte(settings: Settings) -> None:
    assert settings.max_body_bytes == LIMIT


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    """The application is never called and not one byte of the body is read."""
    called: list[str] = []
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append("app")

    async def receive() -> Message:
        called.append("receive")
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-length", b"1025")],
    }
    await BodyLimitMiddleware(app, max_body_bytes=1024)(scope, receive, send)
    assert called == []
    assert sent[0]["status"] == 413
    assert sent[1]["body"] == b'{"detail":"Request body too large"}'


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_oversized_bodies_get_413_and_change_nothing(
    declared: bool, make_client: ClientFactory
) -> None:
    client = make_client()
    padding = " " * LIMIT
    body = f'{{"username": "huge", "password": "{PASSWORD}"{padding}}}'.encode()
    headers = {"content-type": "application/json"}
    for url in ("/api/v1/auth/register", "/auth/register", "/api/v1/auth/login"):
        # A stream has no Content-Length: httpx sends it chunked.
        content = body if declared else _replay(body)
        response = await client.post(url, content=content, headers=headers)
        assert response.status_code == 413, (url, response.text)
        assert response.json() == {"detail": "Request body too large"}
    login = await client.post("/api/v1/auth/login", json={"username": "huge", "password": PASSWORD})
    assert login.status_code == 401  # the account was never created


def _replay(body: bytes) -> AsyncIterator[bytes]:
    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    return stream()


async def test_a_body_at_the_limit_is_read(make_client: ClientFactory) -> None:
    client = make_client()
    head = f'{{"username": "fits", "password": "{PASSWORD}"'.encode()
    body = head + b" " * (LIMIT - len(head) - 1) + b"}"
    assert len(body) == LIMIT
    for content in (body, _replay(body)):
        response = await client.post(
            "/api/v1/auth/register", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code in (201, 409), response.text
    assert (
        await client.post("/api/v1/auth/login", json={"username": "fits", "password": PASSWORD})
    ).status_code == 200


async def test_a_chunked_body_is_cut_where_it_passes_the_limit() -> None:
    """Past the limit the application hears that the client has gone, and its answer is
    dropped: the client gets the one 413."""
    seen: list[Message] = []
    sent: list[Message] = []
    chunks = [b"a" * 600, b"b" * 600, b"c" * 600]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})

    async def receive() -> Message:
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    await BodyLimitMiddleware(app, max_body_bytes=1024)(scope, receive, send)
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]
    assert len(chunks) == 1  # the last chunk was never read
    assert [m.get("status") for m in sent] == [413, None]
    assert sent[1]["body"] == b'{"detail":"Request body too large"}'
