"""The event backbone end to end: outbox, relay, real JetStream, the hub, real WebSockets.

What a socket does with what the hub hands it (replay, resync, slow clients, bad frames) is
tested in tests/realtime/test_sockets.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.msg import Msg

from fxdesk.config import Settings
from fxdesk.events.nats_server import EmbeddedNats
from tests.factories import add_user, api_client, free_port, make_settings, read_metric
from tests.live import (
    next_event,
    post_probe,
    probe_app,
    serving,
    serving_probe,
    subscribe,
    token_for,
    ws_client,
)


async def _backlog(host: str, expected: float) -> float:
    """The outbox backlog gauge as /metrics shows it, once it reads `expected` (or after 5 s)."""
    async with api_client(host) as client:
        for _ in range(50):
            text = (await client.get("/metrics")).text
            line = next(x for x in text.splitlines() if x.startswith("fxdesk_outbox_backlog "))
            if float(line.split()[1]) == expected:
                break
            await asyncio.sleep(0.1)
    return float(line.split()[1])


async def test_committed_event_reaches_nats_and_websocket(
    live_settings: Settings, nats_url: str
) -> None:
    nc = await nats.connect(nats_url)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await received.put({"subject": msg.subject, **json.loads(msg.data)})

    await nc.subscribe("chat.messages", cb=on_msg)
    async with (
        serving_probe(live_settings) as (_, host, user, token),
        ws_client(host, token) as ws,
    ):
        await subscribe(ws, ["chat"], since=0)
        response = await post_probe(host, token, text="first words")
        assert response.status_code == 200
        event_id = response.json()["event_ids"][0]
        on_socket = await next_event(ws)
        on_nats = await asyncio.wait_for(received.get(), 10)
    await nc.close()
    for envelope in (on_socket, on_nats):
        assert envelope["event"] == "chat_message"
        assert envelope["event_id"] == event_id and envelope["seq"] >= 1
        assert envelope["text"] == "first words"
        assert envelope["actor"] == {"id": user.id, "username": "alice"}
        assert envelope["ts"].endswith("Z")
    assert on_nats["subject"] == "chat.messages"
    assert on_socket["event_id"] == on_nats["event_id"]


async def test_concurrent_writers_never_skip_a_seq(live_settings: Settings, nats_url: str) -> None:
    """20 writers whose transactions commit out of insert order: every event arrives once, with
    seqs 1..N in order (ids given at insert used to be published late and then dropped)."""
    writers, per_writer = 20, 5
    async with (
        serving_probe(live_settings) as (_, host, _, token),
        ws_client(host, token) as ws,
    ):
        await subscribe(ws, ["chat"], since=0)
        # Later writers hold their transactions for less time: they commit first.
        responses = await asyncio.gather(
            *(
                post_probe(host, token, text=f"w{i}", count=per_writer, pause=(writers - i) * 0.01)
                for i in range(writers)
            )
        )
        assert all(r.status_code == 200 for r in responses)
        written = {event_id for r in responses for event_id in r.json()["event_ids"]}
        got = [await next_event(ws) for _ in range(writers * per_writer)]
        with pytest.raises(TimeoutError):
            await next_event(ws, timeout=0.5)
    assert [e["seq"] for e in got] == list(range(1, writers * per_writer + 1))
    assert {e["event_id"] for e in got} == written
    nc = await nats.connect(nats_url)
    info = await nc.jetstream().stream_info("FXDESK")
    await nc.close()
    assert info.state.messages == writers * per_writer


async def test_rolled_back_transaction_publishes_nothing(
    live_settings: Settings, nats_url: str
) -> None:
    async with (
        serving_probe(live_settings) as (_, host, _, token),
        ws_client(host, token) as ws,
    ):
        await subscribe(ws, ["chat"], since=0)
        failed = await post_probe(host, token, text="never happened", count=3, fail=True)
        assert failed.status_code == 409
        ok = await post_probe(host, token, text="happened")
        assert ok.status_code == 200
        event = await next_event(ws)
        assert event["text"] == "happened"
        with pytest.raises(TimeoutError):
            await next_event(ws, timeout=0.5)
    nc = await nats.connect(nats_url)
    info = await nc.jetstream().stream_info("FXDESK")
    await nc.close()
    assert info.state.messages == 1


async def test_changes_succeed_while_nats_is_down_and_arrive_once_in_order_after(
    tmp_path: Path, db_url: str
) -> None:
    server = EmbeddedNats(tmp_path / "own-nats", port=free_port(), log_level="WARNING")
    await server.start()
    app = probe_app(make_settings(tmp_path, db_url, nats_url=server.url))
    try:
        async with serving(app) as host:
            token = await token_for(app, await add_user(app, "alice"))
            async with ws_client(host, token) as ws:
                await subscribe(ws, ["chat"], since=0)
                before = await post_probe(host, token, text="before")
                assert (await next_event(ws))["text"] == "before"

                await server.stop()
                during = []
                for i in range(5):
                    response = await post_probe(host, token, text=f"during-{i}")
                    assert response.status_code == 200  # NATS down: the change is still stored
                    during.extend(response.json()["event_ids"])
                ready = await httpx.AsyncClient(base_url=f"http://{host}").get("/ready")
                assert ready.status_code == 503 and ready.json()["checks"]["nats"] == "unavailable"
                assert await _backlog(host, 5) == 5

                await server.start()  # same port, same store: clients reconnect by themselves
                got = [await next_event(ws, timeout=20) for _ in range(5)]
                assert [e["event_id"] for e in got] == during
                assert [e["seq"] for e in got] == sorted({e["seq"] for e in got})
                assert [e["text"] for e in got] == [f"during-{i}" for i in range(5)]
                with pytest.raises(TimeoutError):
                    await next_event(ws, timeout=1)  # and nothing twice
                assert await _backlog(host, 0) == 0

        nc = await nats.connect(server.url)
        js = nc.jetstream()
        sub = await js.subscribe("chat.messages", ordered_consumer=True)
        ids = [json.loads((await sub.next_msg(timeout=5)).data)["event_id"] for _ in range(6)]
        await nc.close()
        assert ids == before.json()["event_ids"] + during
    finally:
        await server.stop()


async def test_event_from_instance_a_reaches_a_client_of_instance_b(
    tmp_path: Path, db_url: str, nats_url: str
) -> None:
    app_a = probe_app(make_settings(tmp_path / "a", db_url, nats_url=nats_url))
    app_b = probe_app(make_settings(tmp_path / "b", db_url, nats_url=nats_url))
    async with serving(app_a) as host_a, serving(app_b) as host_b:
        user = await add_user(app_a, "alice")
        async with ws_client(host_b, await token_for(app_b, user)) as on_b:
            await subscribe(on_b, ["chat"], since=0)
            response = await post_probe(
                host_a, await token_for(app_a, user), text="from A", count=3
            )
            assert response.status_code == 200
            got = [await next_event(on_b) for _ in range(3)]
    assert [e["event_id"] for e in got] == response.json()["event_ids"]
    assert all(e["text"] == "from A" for e in got)


async def test_a_deleted_stream_consumer_is_recreated_and_nothing_is_missed(
    live_settings: Settings, nats_url: str
) -> None:
    async with serving_probe(live_settings) as (_, host, _, token):
        recoveries = await read_metric(host, "fxdesk_event_consumer_recoveries_total")
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat"], since=0)
            await post_probe(host, token, text="before")
            assert (await next_event(ws))["text"] == "before"

            nc = await nats.connect(nats_url)
            try:  # an operator (or a cluster failover) removes the consumer under us
                js = nc.jetstream()
                for consumer in await js.consumers_info(live_settings.nats_stream):
                    assert await js.delete_consumer(live_settings.nats_stream, consumer.name)
            finally:
                await nc.close()
            after = (await post_probe(host, token, text="after", count=3)).json()["event_ids"]
            # The ordered consumer alone notices only after two missed heartbeats (10 s).
            got = [await next_event(ws, timeout=5) for _ in range(3)]
            assert [e["event_id"] for e in got] == after
            with pytest.raises(TimeoutError):
                await next_event(ws, timeout=0.5)  # and nothing twice
        assert await read_metric(host, "fxdesk_event_consumer_recoveries_total") > recoveries
        # held at 503 ("recovering from: ...") for a second after the recovery, then ready
        async with httpx.AsyncClient(base_url=f"http://{host}") as probe:
            for _ in range(100):
                ready = await probe.get("/ready")
                if ready.status_code == 200:
                    break
                assert ready.json()["checks"]["events"].startswith("recovering from: ")
                await asyncio.sleep(0.05)
        assert ready.status_code == 200 and ready.json()["checks"]["events"] == "ok"


async def test_invalid_messages_on_nats_are_dropped(live_settings: Settings, nats_url: str) -> None:
    async with serving_probe(live_settings) as (_, host, _, token):
        invalid_before = await read_metric(host, "fxdesk_events_invalid_total")
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat", "tasks"], since=0)
            nc = await nats.connect(nats_url)
            js = nc.jetstream()
            await js.publish("tasks.updates", b"not json at all")
            await js.publish("tasks.updates", json.dumps({"event": "task_created"}).encode())
            await nc.close()
            response = await post_probe(host, token, text="valid")
            event = await next_event(ws)
            assert event["event_id"] == response.json()["event_ids"][0]
            assert event["text"] == "valid"
        assert await read_metric(host, "fxdesk_events_invalid_total") - invalid_before == 2
