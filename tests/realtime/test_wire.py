"""Live frames written straight to the socket: the framing, and that the served app uses it."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode

from fxdesk.config import Settings
from fxdesk.events.schemas import Channel
from fxdesk.realtime.hub import Hub
from fxdesk.realtime.wire import text_frame
from tests.factories import add_user
from tests.live import next_event, probe_app, serving, subscribe, token_for, ws_client


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
def test_text_frame_is_what_websockets_would_send(size: int) -> None:
    payload = ("ж" * size).encode()[:size]  # multi-byte UTF-8 cut to the exact size
    expected = Frame(Opcode.TEXT, payload, fin=True).serialize(mask=False)
    assert text_frame(payload) == expected


async def test_live_clients_take_the_wire_and_seed_sockets_do_not(
    live_settings: Settings,
) -> None:
    app = probe_app(live_settings)
    async with serving(app) as host:
        user = await add_user(app, "wes")
        token = await token_for(app, user)
        async with ws_client(host, token) as live, ws_client(host, token, path="/ws/rates"):
            await subscribe(live, ["chat"])
            hub: Hub = app.state.hub
            for _ in range(100):
                if len(hub.clients) == 2:
                    break
                await asyncio.sleep(0.02)
            wires = sorted(client.wire is not None for client in hub.clients)
            # /api/v1/ws writes shared frames; /ws/rates reshapes each one, so it cannot.
            assert wires == [False, True]
            hub.publish_local(hub.last_seq + 1, Channel.chat, '{"event":"x"}')
            assert await live.recv() == '{"event":"x"}'
            with pytest.raises(TimeoutError):
                await next_event(live, timeout=0.2)
