"""Stream replicas on a real 3-node JetStream cluster: created, raised, never lowered, failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats.errors
import pytest
from nats.js.api import StreamConfig, StreamInfo
from nats.js.errors import APIError
from structlog.testing import capture_logs

from fxdesk.config import ConfigError, Settings
from fxdesk.events.broker import Broker
from fxdesk.events.schemas import SUBJECTS
from tests.factories import make_settings
from tests.natscluster import NatsCluster

STREAM = "FXDESK"
SUBJECT = SUBJECTS[next(iter(SUBJECTS))]


def _settings(tmp_path: Path, nats_url: str | None, **overrides: object) -> Settings:
    return make_settings(tmp_path, tmp_path / "fxdesk.db", nats_url=nats_url, **overrides)


@asynccontextmanager
async def _started(settings: Settings) -> AsyncIterator[Broker]:
    broker = Broker(settings)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def _info(cluster: NatsCluster) -> StreamInfo:
    nc = await cluster.connect()
    try:
        return await nc.jetstream(timeout=5).stream_info(STREAM)
    finally:
        await nc.close()


async def _wait_all_replicas_current(cluster: NatsCluster, timeout: float = 20.0) -> StreamInfo:
    """The stream's info once a leader and every follower of it are current (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        info = await _info(cluster)
        leader = info.cluster.leader if info.cluster else None
        peers = (info.cluster.replicas or []) if info.cluster else []
        expected = (info.config.num_replicas or 1) - 1
        if leader and len(peers) == expected and all(peer.current for peer in peers):
            return info
        if time.monotonic() >= deadline:
            raise AssertionError(f"stream replicas not all current after {timeout:g} s: {info}")
        await asyncio.sleep(0.2)


async def _publish(broker: Broker, msg_id: str, timeout: float = 30.0) -> int:
    """Publish one event, retrying while the cluster elects a leader; the id deduplicates."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ack = await broker.js.publish(
                SUBJECT, msg_id.encode(), timeout=2, headers={"Nats-Msg-Id": msg_id}
            )
            return int(ack.seq)
        except (nats.errors.Error, APIError, TimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"publish of {msg_id} failed for {timeout:g} s") from exc
            await asyncio.sleep(0.25)


async def test_r3_stream_stays_r3_across_restarts_even_with_a_lower_setting(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    r3 = _settings(tmp_path, nats_cluster.urls, nats_stream_replicas=3)
    async with _started(r3) as broker:
        await _publish(broker, "before-restart")
    info = await _wait_all_replicas_current(nats_cluster)
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    assert {info.cluster.leader, *(p.name for p in info.cluster.replicas or [])} == set(
        nats_cluster.server_names
    )

    with capture_logs() as logs:
        async with _started(r3):
            pass
    assert (await _info(nats_cluster)).config.num_replicas == 3
    assert "nats_stream_updated" not in [line["event"] for line in logs]  # nothing to change

    r1 = _settings(tmp_path, nats_cluster.urls, nats_stream_replicas=1)
    with capture_logs() as logs:
        async with _started(r1):
            pass
    info = await _info(nats_cluster)
    assert info.config.num_replicas == 3
    assert info.state.messages == 1
    kept = [line for line in logs if line["event"] == "nats_stream_replicas_kept"]
    assert len(kept) == 1, logs
    assert kept[0]["log_level"] == "warning"
    assert kept[0]["replicas"] == 3 and kept[0]["setting"] == 1
    assert "FXDESK_NATS_STREAM_REPLICAS=1" in kept[0]["reason"]
    assert "keeps 3" in kept[0]["reason"]


async def test_a_start_keeps_what_was_set_by_hand_and_applies_only_its_own_fields(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    nc = await nats_cluster.connect()
    try:
        await nc.jetstream(timeout=10).add_stream(
            StreamConfig(
                name=STREAM,
                subjects=list(SUBJECTS.values()),
                num_replicas=3,
                description="scaled up by ops",
                metadata={"owner": "ops"},
                max_msgs=50_000,
                max_bytes=2 * 1_048_576,
                max_age=7200.0,
                duplicate_window=600.0,
            )
        )
    finally:
        await nc.close()

    default = _settings(tmp_path, nats_cluster.urls)  # replicas 1, max_bytes 1 GiB
    async with _started(default):
        pass
    config = (await _info(nats_cluster)).config
    assert config.num_replicas == 3
    assert config.description == "scaled up by ops"
    assert config.metadata is not None and config.metadata.get("owner") == "ops"
    assert config.max_msgs == 50_000
    assert config.max_bytes == default.nats_stream_max_bytes  # ours: brought to the setting


async def test_raising_replicas_from_1_to_3_is_applied(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    async with _started(_settings(tmp_path, nats_cluster.urls)) as broker:
        for n in range(3):
            await _publish(broker, f"r1-{n}")
    info = await _info(nats_cluster)
    assert info.config.num_replicas == 1
    assert info.cluster is not None and not info.cluster.replicas

    async with _started(_settings(tmp_path, nats_cluster.urls, nats_stream_replicas=3)):
        pass
    info = await _wait_all_replicas_current(nats_cluster)
    assert info.config.num_replicas == 3
    assert info.state.messages == 3


async def test_more_replicas_than_servers_refuses_to_start_naming_the_setting(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    broker = Broker(_settings(tmp_path, nats_cluster.urls, nats_stream_replicas=5))
    with pytest.raises(ConfigError, match=r"FXDESK_NATS_STREAM_REPLICAS=5: .*no suitable peers"):
        await broker.start()
    assert not broker.connected
    nc = await nats_cluster.connect()
    try:
        assert await nc.jetstream(timeout=5).streams_info() == []
    finally:
        await nc.close()


@pytest.mark.parametrize("existing", [False, True], ids=["new-stream", "existing-r1-stream"])
async def test_r3_on_the_embedded_server_refuses_to_start(tmp_path: Path, existing: bool) -> None:
    if existing:
        async with _started(_settings(tmp_path, None)):
            pass
    broker = Broker(_settings(tmp_path, None, nats_stream_replicas=3))
    with pytest.raises(ConfigError) as refused:
        await broker.start()
    message = str(refused.value)
    assert "FXDESK_NATS_STREAM_REPLICAS=3" in message
    assert "not clustered" in message
    assert broker.embedded is not None and not broker.embedded.running  # nothing left behind

    if existing:  # and the refused start changed nothing
        async with _started(_settings(tmp_path, None)) as broker:
            info = await broker.js.stream_info(STREAM)
        assert info.config.num_replicas == 1


async def test_publishing_survives_a_sigkill_of_the_stream_leader(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    async with _started(_settings(tmp_path, nats_cluster.urls, nats_stream_replicas=3)) as broker:
        for n in range(5):
            await _publish(broker, f"before-{n}")
        await _wait_all_replicas_current(nats_cluster)
        leader = await nats_cluster.stream_leader(STREAM)

        await nats_cluster.kill(leader)
        seq = await _publish(broker, "after-kill")
        assert seq == 6
        new_leader = await nats_cluster.wait_for_stream_leader(STREAM, not_on=leader)
        assert new_leader != leader and not nats_cluster.running(leader)

        info = await broker.js.stream_info(STREAM)
        assert info.state.messages == 6
        bodies = [(await broker.js.get_msg(STREAM, s)).data for s in range(1, 7)]
        assert bodies == [f"before-{n}".encode() for n in range(5)] + [b"after-kill"]

    await nats_cluster.restart(leader)
    info = await _wait_all_replicas_current(nats_cluster)
    assert info.state.messages == 6
