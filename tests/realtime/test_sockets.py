"""Live sockets over real uvicorn and JetStream: replay after a reconnect, resync, slow and
stalled clients cut with 1013, refused handshakes and bad frames closed cleanly."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from fxdesk.app import SOCKETS
from fxdesk.config import Settings
from fxdesk.realtime.protocol import CLOSE_POLICY, CLOSE_SERVICE_RESTART
from tests.factories import read_metric
from tests.live import (
    next_event,
    next_json,
    post_probe,
    serving_probe,
    subscribe,
    ws_client,
)


async def test_reconnecting_client_gets_exactly_what_it_missed(live_settings: Settings) -> None:
    async with serving_probe(live_settings) as (_, host, _, token):
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat", "tasks"], since=0)
            await post_probe(host, token, text="seen", count=3)
            seen = [await next_event(ws) for _ in range(3)]
        last_seen = seen[-1]["seq"]
        missed = (await post_probe(host, token, text="missed", count=4)).json()["event_ids"]
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat"], since=last_seen)
            replayed = [await next_event(ws) for _ in range(4)]
            live = (await post_probe(host, token, text="live")).json()["event_ids"]
            after = await next_event(ws)
            with pytest.raises(TimeoutError):
                await next_event(ws, timeout=0.5)
    assert [e["event_id"] for e in replayed] == missed
    assert after["event_id"] == live[0]


async def test_too_old_or_unknown_since_gets_resync(live_settings: Settings) -> None:
    live_settings.ws_replay_buffer = 100
    async with serving_probe(live_settings) as (_, host, _, token):
        await post_probe(host, token, count=105)
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat"], since=0)  # fills the window
            await asyncio.sleep(0.5)
        async with ws_client(host, token) as ws:
            answer = await subscribe(ws, ["chat"], since=1)
            assert answer["type"] == "resync" and answer["seq"] == 105
        async with ws_client(host, token) as ws:
            answer = await subscribe(ws, ["chat"], since=10_000)
            assert answer["type"] == "resync"
        async with ws_client(host, token) as ws:
            answer = await subscribe(ws, ["chat"], since=10)  # still inside the window
            assert answer["type"] == "subscribed"
            assert (await next_event(ws))["seq"] == 11


async def test_slow_client_is_disconnected_while_a_reader_keeps_receiving(
    live_settings: Settings,
) -> None:
    live_settings.ws_queue_size = 8
    async with serving_probe(live_settings) as (_, host, _, token):
        slow_before = await read_metric(host, "fxdesk_ws_slow_disconnects_total")
        async with (
            ws_client(host, token, max_queue=1, receive_buffer=4096) as slow,
            ws_client(host, token) as reader,
        ):
            await subscribe(slow, ["chat"])
            await subscribe(reader, ["chat"])
            big = secrets.token_urlsafe(45_000)  # incompressible, ~60 KB a frame
            total = 0
            received = 0
            for _ in range(12):
                seqs = (await post_probe(host, token, text=big, count=20)).json()["event_ids"]
                total += len(seqs)
                while received < total:
                    await next_event(reader)
                    received += 1
            assert received == total == 240
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(slow.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        slow_after = await read_metric(host, "fxdesk_ws_slow_disconnects_total")
        assert slow_after - slow_before == 1


@pytest.mark.parametrize("case", ["foreign_origin", "no_session", "bad_token"])
async def test_refused_handshakes_close_with_1008(case: str, live_settings: Settings) -> None:
    async with serving_probe(live_settings) as (_, host, _, token):
        origin = {"foreign_origin": "https://evil.example"}.get(case)
        used = {"no_session": None, "bad_token": token + "x"}.get(case, token)
        async with ws_client(host, used, origin=origin) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await next_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        # and the same handshake from an allowed origin with the session passes
        async with ws_client(host, token, origin=f"http://{host}") as ws:
            assert (await next_json(ws))["type"] == "hello"


@pytest.mark.parametrize("path", ["/api/v1/ws", "/tasks/general_chat", "/ws/rates"])
@pytest.mark.parametrize(("frame", "code"), [("binary", 1003), ("bad_utf8", 1007)])
async def test_binary_or_malformed_frames_get_a_clean_close(
    path: str, frame: str, code: int, live_settings: Settings
) -> None:
    async with serving_probe(live_settings) as (_, host, _, token):
        async with ws_client(host, token, path=path) as ws:
            if frame == "binary":
                await ws.send(b"\x00\x01 not text")
            else:
                await ws.send(b'{"op": "ping", "x": "\xff\xfe"}', text=True)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code
        # the server goes on serving everyone else
        async with ws_client(host, token) as other:
            assert (await next_json(other))["type"] == "hello"


async def test_a_client_that_stops_reading_is_cut_by_bytes_and_told_why(
    live_settings: Settings,
) -> None:
    """Few frames but many bytes: the kernel must not hide the backlog (it would absorb
    megabytes on loopback), and the 1013 close frame reaches the client once it reads again."""
    live_settings.ws_queue_bytes = 65_536
    async with (
        serving_probe(live_settings) as (_, host, _, token),
        ws_client(host, token, max_queue=1) as stalled,  # default kernel buffers
        ws_client(host, token) as reader,
    ):
        await subscribe(stalled, ["chat"])
        await subscribe(reader, ["chat"])
        text = secrets.token_urlsafe(1500)  # ~2 KB a frame: far below the frame limit
        received = 0
        for _ in range(10):
            assert (await post_probe(host, token, text=text, count=60)).status_code == 200
            while received < (_ + 1) * 60:
                await next_event(reader)
                received += 1
        assert received == 600  # about 1.2 MB, fewer frames than ws_queue_size (512)...
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # ...yet the stalled client was cut, and learns why as it reads
                await asyncio.wait_for(stalled.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013


@pytest.mark.parametrize("path", sorted(SOCKETS))
@pytest.mark.parametrize("case", ["no_session", "bad_token"])
async def test_every_socket_in_the_table_refuses_an_anonymous_handshake(
    path: str, case: str, live_settings: Settings
) -> None:
    """The route-protection walk, for sockets: every endpoint of `fxdesk.app.SOCKETS` sits
    behind the same admission check."""
    async with serving_probe(live_settings) as (_, host, _, token):
        used = None if case == "no_session" else token + "x"
        async with ws_client(host, used, path=path) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_POLICY


async def test_shutdown_closes_every_socket_with_1012(live_settings: Settings) -> None:
    """What the README's close-code table says the server sends when it stops."""
    async with serving_probe(live_settings) as (_, host, _, token):
        ws = await ws_connect(
            f"ws://{host}/api/v1/ws", additional_headers={"Authorization": f"Bearer {token}"}
        )
        assert json.loads(await ws.recv())["type"] == "hello"
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSE_SERVICE_RESTART == 1012
