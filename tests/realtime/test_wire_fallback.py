"""The fan-out writes frames straight to uvicorn's transport (realtime/wire.py) only when the
server internals it needs are there; otherwise the socket is served through plain ASGI."""

from __future__ import annotations

from typing import Any

import pytest

from fxdesk.realtime import wire
from fxdesk.realtime.wire import Wire
from tests.factories import api_client as _api
from tests.live import next_event, subscribe, token_for, ws_client
from tests.realtime.test_socket_revocation import _user, two

__all__ = ["two"]


@pytest.fixture
def found(monkeypatch: pytest.MonkeyPatch) -> list[Wire | None]:
    """What `Wire.of` gave each socket, from here on."""
    seen: list[Wire | None] = []
    original = Wire.of.__func__  # type: ignore[attr-defined]

    def spy(cls: type[Wire], websocket: Any) -> Wire | None:
        seen.append(original(cls, websocket))
        return seen[-1]

    monkeypatch.setattr(Wire, "of", classmethod(spy))
    return seen


@pytest.mark.parametrize("missing", ["protocol", "transport"])
async def test_a_server_without_the_internals_gets_plain_asgi_sends(
    two: Any, missing: str, found: list[Wire | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    app_a, host_a, _app_b, _host_b = two
    name = "PROTOCOL_INTERNALS" if missing == "protocol" else "TRANSPORT_INTERNALS"
    monkeypatch.setattr(wire, name, (*getattr(wire, name), "renamed_by_a_new_uvicorn"))
    alice = await _user(app_a, "alice")
    token = await token_for(app_a, alice)
    async with ws_client(host_a, token) as live, _api(host_a, token) as api:
        await subscribe(live, ["chat"])
        assert found == [None]  # no wire: the hub sends through websocket.send_text
        for text in ("one", "two", "three"):
            assert (await api.post("/api/v1/chat/messages", json={"text": text})).status_code == 201
        received = [(await next_event(live))["text"] for _ in range(3)]
    assert received == ["one", "two", "three"]


async def test_uvicorns_protocol_has_the_internals(two: Any, found: list[Wire | None]) -> None:
    """The pinned uvicorn does have them: sockets get a Wire (the fast path is really used)."""
    app_a, host_a, _app_b, _host_b = two
    alice = await _user(app_a, "alice")
    async with ws_client(host_a, await token_for(app_a, alice)) as live:
        await subscribe(live, ["chat"])
    assert len(found) == 1 and isinstance(found[0], Wire)
