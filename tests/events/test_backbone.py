"""The event backbone end to end: outbox, relay, real JetStream, hub, real WebSockets."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import httpx
import nats
import pytest
from websockets.exceptions import ConnectionClosed

from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.users.models import Role, User
from fxdesk.users.schemas import username_key
from tests.factories import free_port, make_settings, purge_stream
from tests.live import next_event, next_json, probe_app, serving, subscribe, token_for, ws_client


async def _user(app, name: str = "alice", role: Role = Role.user) -> User:
    async with app.state.database.session() as session:
        user = User(username=name, username_key=username_key(name), password_hash="x", role=role)
        session.add(user)
    return user


@pytest.fixture
def db_path(db_url: str) -> str:
    """The URL of this test's database (shared by the instances of a test)."""
    return db_url


@pytest.fixture
async def nats_url(nats_server: EmbeddedNats) -> str:
    await purge_stream(nats_server.url)
    return nats_server.url


async def _emit(host: str, token: str, **body: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://{host}") as client:
        return await client.post(
            "/api/v1/probe/emit", json=body, headers={"Authorization": f"Bearer {token}"}
        )


def _counter(text: str, name: str) -> float:
    """A counter's value in /metrics text (counters are per process: tests compare deltas)."""
    line = next((x for x in text.splitlines() if x.startswith(f"{name} ")), f"{name} 0")
    return float(line.split()[1])


async def _metric(host: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=f"http://{host}") as client:
        return _counter((await client.get("/metrics")).text, name)


async def _backlog(host: str, expected: float) -> float:
    """The outbox backlog gauge as /metrics shows it, once it reads `expected` (or after 5 s)."""
    async with httpx.AsyncClient(base_url=f"http://{host}") as client:
        for _ in range(50):
            text = (await client.get("/metrics")).text
            line = next(x for x in text.splitlines() if x.startswith("fxdesk_outbox_backlog "))
            if float(line.split()[1]) == expected:
                break
            await asyncio.sleep(0.1)
    return float(line.split()[1])


async def test_committed_event_reaches_nats_and_websocket(
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url))
    nc = await nats.connect(nats_url)
    received: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def on_msg(msg: nats.aio.msg.Msg) -> None:
        await received.put({"subject": msg.subject, **json.loads(msg.data)})

    await nc.subscribe("chat.messages", cb=on_msg)
    async with serving(app) as host:
        user = await _user(app)
        token = await token_for(app, user)
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat"], since=0)
            response = await _emit(host, token, text="first words")
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


async def test_concurrent_writers_never_skip_a_seq(
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    """20 writers whose transactions commit out of insert order: every event arrives once, with
    seqs 1..N in order (ids given at insert used to be published late and then dropped)."""
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url))
    writers, per_writer = 20, 5
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat"], since=0)
            # Later writers hold their transactions for less time: they commit first.
            responses = await asyncio.gather(
                *(
                    _emit(host, token, text=f"w{i}", count=per_writer, pause=(writers - i) * 0.01)
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
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url))
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat"], since=0)
            failed = await _emit(host, token, text="never happened", count=3, fail=True)
            assert failed.status_code == 409
            ok = await _emit(host, token, text="happened")
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
    tmp_path: Path, db_path: str
) -> None:
    server = EmbeddedNats(tmp_path / "own-nats", port=free_port(), log_level="WARNING")
    await server.start()
    app = probe_app(make_settings(tmp_path, db_path, nats_url=server.url))
    try:
        async with serving(app) as host:
            token = await token_for(app, await _user(app))
            async with ws_client(host, token) as ws:
                await subscribe(ws, ["chat"], since=0)
                before = await _emit(host, token, text="before")
                assert (await next_event(ws))["text"] == "before"

                await server.stop()
                during = []
                for i in range(5):
                    response = await _emit(host, token, text=f"during-{i}")
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
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app_a = probe_app(make_settings(tmp_path / "a", db_path, nats_url=nats_url))
    app_b = probe_app(make_settings(tmp_path / "b", db_path, nats_url=nats_url))
    async with serving(app_a) as host_a, serving(app_b) as host_b:
        user = await _user(app_a)
        async with ws_client(host_b, await token_for(app_b, user)) as on_b:
            await subscribe(on_b, ["chat"], since=0)
            response = await _emit(host_a, await token_for(app_a, user), text="from A", count=3)
            assert response.status_code == 200
            got = [await next_event(on_b) for _ in range(3)]
    assert [e["event_id"] for e in got] == response.json()["event_ids"]
    assert all(e["text"] == "from A" for e in got)


async def test_a_deleted_stream_consumer_is_recreated_and_nothing_is_missed(
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    settings = make_settings(tmp_path, db_path, nats_url=nats_url)
    app = probe_app(settings)
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        recoveries = await _metric(host, "fxdesk_event_consumer_recoveries_total")
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat"], since=0)
            await _emit(host, token, text="before")
            assert (await next_event(ws))["text"] == "before"

            nc = await nats.connect(nats_url)
            try:  # an operator (or a cluster failover) removes the consumer under us
                js = nc.jetstream()
                for consumer in await js.consumers_info(settings.nats_stream):
                    assert await js.delete_consumer(settings.nats_stream, consumer.name)
            finally:
                await nc.close()
            after = (await _emit(host, token, text="after", count=3)).json()["event_ids"]
            # The ordered consumer alone notices only after two missed heartbeats (10 s).
            got = [await next_event(ws, timeout=5) for _ in range(3)]
            assert [e["event_id"] for e in got] == after
            with pytest.raises(TimeoutError):
                await next_event(ws, timeout=0.5)  # and nothing twice
        assert await _metric(host, "fxdesk_event_consumer_recoveries_total") > recoveries
        # held at 503 ("recovering from: ...") for a second after the recovery, then ready
        async with httpx.AsyncClient(base_url=f"http://{host}") as probe:
            for _ in range(100):
                ready = await probe.get("/ready")
                if ready.status_code == 200:
                    break
                assert ready.json()["checks"]["events"].startswith("recovering from: ")
                await asyncio.sleep(0.05)
        assert ready.status_code == 200 and ready.json()["checks"]["events"] == "ok"


async def test_reconnecting_client_gets_exactly_what_it_missed(
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url))
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat", "tasks"], since=0)
            await _emit(host, token, text="seen", count=3)
            seen = [await next_event(ws) for _ in range(3)]
        last_seen = seen[-1]["seq"]
        missed = (await _emit(host, token, text="missed", count=4)).json()["event_ids"]
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat"], since=last_seen)
            replayed = [await next_event(ws) for _ in range(4)]
            live = (await _emit(host, token, text="live")).json()["event_ids"]
            after = await next_event(ws)
            with pytest.raises(TimeoutError):
                await next_event(ws, timeout=0.5)
    assert [e["event_id"] for e in replayed] == missed
    assert after["event_id"] == live[0]


async def test_too_old_or_unknown_since_gets_resync(
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url, ws_replay_buffer=100))
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        await _emit(host, token, count=105)
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
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url, ws_queue_size=8))
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        slow_before = await _metric(host, "fxdesk_ws_slow_disconnects_total")
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
                seqs = (await _emit(host, token, text=big, count=20)).json()["event_ids"]
                total += len(seqs)
                while received < total:
                    await next_event(reader)
                    received += 1
            assert received == total == 240
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(slow.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        slow_after = await _metric(host, "fxdesk_ws_slow_disconnects_total")
        assert slow_after - slow_before == 1


@pytest.mark.parametrize("case", ["foreign_origin", "no_session", "bad_token"])
async def test_refused_handshakes_close_with_1008(
    case: str, tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url))
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        origin = {"foreign_origin": "https://evil.example"}.get(case)
        used = {"no_session": None, "bad_token": token + "x"}.get(case, token)
        async with ws_client(host, used, origin=origin) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await next_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        # and the same handshake from an allowed origin with the session passes
        async with ws_client(host, token, origin=f"http://{host}") as ws:
            assert (await next_json(ws))["type"] == "hello"


async def test_invalid_messages_on_nats_are_dropped(
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url))
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        invalid_before = await _metric(host, "fxdesk_events_invalid_total")
        async with ws_client(host, token) as ws:
            await subscribe(ws, ["chat", "tasks"], since=0)
            nc = await nats.connect(nats_url)
            js = nc.jetstream()
            await js.publish("tasks.updates", b"not json at all")
            await js.publish("tasks.updates", json.dumps({"event": "task_created"}).encode())
            await nc.close()
            response = await _emit(host, token, text="valid")
            event = await next_event(ws)
            assert event["event_id"] == response.json()["event_ids"][0]
            assert event["text"] == "valid"
        assert await _metric(host, "fxdesk_events_invalid_total") - invalid_before == 2


@pytest.mark.parametrize("path", ["/api/v1/ws", "/tasks/general_chat", "/ws/rates"])
@pytest.mark.parametrize(("frame", "code"), [("binary", 1003), ("bad_utf8", 1007)])
async def test_binary_or_malformed_frames_get_a_clean_close(
    path: str, frame: str, code: int, tmp_path: Path, db_path: str, nats_url: str
) -> None:
    app = probe_app(make_settings(tmp_path, db_path, nats_url=nats_url))
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
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
    tmp_path: Path, db_path: str, nats_url: str
) -> None:
    """Few frames but many bytes: the kernel must not hide the backlog (it would absorb
    megabytes on loopback), and the 1013 close frame reaches the client once it reads again."""
    settings = make_settings(tmp_path, db_path, nats_url=nats_url, ws_queue_bytes=65_536)
    app = probe_app(settings)
    async with serving(app) as host:
        token = await token_for(app, await _user(app))
        async with (
            ws_client(host, token, max_queue=1) as stalled,  # default kernel buffers
            ws_client(host, token) as reader,
        ):
            await subscribe(stalled, ["chat"])
            await subscribe(reader, ["chat"])
            text = secrets.token_urlsafe(1500)  # ~2 KB a frame: far below the frame limit
            received = 0
            for _ in range(10):
                assert (await _emit(host, token, text=text, count=60)).status_code == 200
                while received < (_ + 1) * 60:
                    await next_event(reader)
                    received += 1
            assert received == 600  # about 1.2 MB, fewer frames than ws_queue_size (512)...
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # ...yet the stalled client was cut, and learns why as it reads
                    await asyncio.wait_for(stalled.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
