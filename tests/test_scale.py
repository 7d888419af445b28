"""Scale-out end to end: PostgreSQL, a 3-node JetStream cluster (R3 stream) and three `fxdesk
serve` processes, with a socket client on each and writers spread over them, while the stream
leader's NATS node and then one fxdesk instance are SIGKILLed."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from tests.factories import until
from tests.natscluster import NatsCluster
from tests.pg import Databases
from tests.scale import (
    FxdeskProcess,
    Receiver,
    Writer,
    account,
    instance_env,
)

WRITERS = 6
WRITE_RATE = 4.0  # per writer, per second


async def _watch_ready(host: str, seen: list[int | None], stop: asyncio.Event) -> None:
    # Often: a node's instance can be back on another node well within a second.
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=1) as client:
        while not stop.is_set():
            try:
                seen.append((await client.get("/ready")).status_code)
            except httpx.HTTPError:
                seen.append(None)
            await asyncio.sleep(0.02)


async def test_nothing_is_lost_across_a_nats_node_and_an_instance_killed(
    tmp_path: Path, postgres: Databases, nats_cluster: NatsCluster
) -> None:
    name = postgres.create()
    urls = nats_cluster.node_urls
    shared = instance_env(postgres.url(name), urls, replicas=3)
    # Each instance prefers its own node (servers are tried in the order given).
    instances = [
        FxdeskProcess(
            i, tmp_path / f"fxdesk{i}", {**shared, "FXDESK_NATS_URL": ",".join(urls[i:] + urls[:i])}
        )
        for i in range(3)
    ]
    for instance in instances:  # together, on an empty database: migrations take turns
        instance.start()
    receivers: list[Receiver] = []
    writers: list[Writer] = []
    stop_watching = asyncio.Event()
    watchers: list[asyncio.Task[None]] = []
    try:
        await asyncio.gather(*(instance.wait_ready() for instance in instances))
        hosts = [instance.host for instance in instances]
        leader = await nats_cluster.stream_leader("FXDESK")
        # The instance connected to the leader's node, and another one to kill later.
        lost_node, victim = instances[leader], instances[(leader + 1) % 3]
        ready_seen: dict[str, list[int | None]] = {host: [] for host in hosts}
        watchers = [
            asyncio.create_task(_watch_ready(host, ready_seen[host], stop_watching))
            for host in hosts
        ]

        for i, instance in enumerate(instances):
            token = await account(instance.host, f"reader{i}")
            receiver = Receiver(f"reader{i}", token)
            receiver.follow(hosts[i:] + hosts[:i])  # resumes on the next instance if its dies
            receivers.append(receiver)
        await asyncio.gather(*(asyncio.wait_for(r.subscribed.wait(), 20) for r in receivers))

        dead: set[str] = set()
        for i in range(WRITERS):
            token = await account(hosts[i % 3], f"writer{i}")
            writer = Writer(f"writer{i}", token, WRITE_RATE)
            writer.run(hosts[i % 3 :] + hosts[: i % 3], dead)
            writers.append(writer)

        await asyncio.sleep(3)
        await nats_cluster.kill(leader)  # the stream leader's node, and lost_node's server
        try:
            await until(lambda: 503 in ready_seen[lost_node.host], 15, "/ready 503")
        except AssertionError:
            seen = ready_seen[lost_node.host]
            raise AssertionError(f"no 503 on the node's instance; it said {seen[-60:]}") from None
        await nats_cluster.wait_for_stream_leader("FXDESK", not_on=leader)
        await asyncio.sleep(3)

        dead.add(victim.host)
        victim.kill()
        await asyncio.sleep(5)
        for writer in writers:
            await writer.stop()
        written = {w.task_id for writer in writers for w in writer.done}
        survivors = receivers  # every client survives: the victim's one resumes elsewhere

        def all_delivered() -> bool:
            return all(written <= {e.task_id for e in r.events} for r in survivors)

        await until(all_delivered, 60, "every 2xx write at every client")
        await until(lambda: ready_seen[lost_node.host][-1:] == [200], 30, "/ready 200 again after")
        await asyncio.sleep(1)  # anything delivered twice would arrive now

        assert len(written) > WRITERS * WRITE_RATE * 5  # the load really ran
        for receiver in survivors:
            seqs = [e.seq for e in receiver.events]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), receiver.name
            counts = Counter(e.task_id for e in receiver.events)
            assert {task for task, n in counts.items() if n > 1} == set(), receiver.name
            assert written <= set(counts), receiver.name
        victims_reader = receivers[instances.index(victim)]
        assert victims_reader.resumes >= 1  # it did move to another instance
        failed_live = [
            (host, why) for writer in writers for host, why in writer.failed if host != victim.host
        ]
        assert failed_live == []
        assert 503 in ready_seen[lost_node.host] and ready_seen[lost_node.host][-1] == 200
    except BaseException:
        for instance in instances:  # what each instance said, beside the failure
            print(f"--- instance {instance.index} ---\n{instance.log_tail(40)}")
        raise
    finally:
        stop_watching.set()
        for task in watchers:
            await task
        for writer in writers:
            await writer.stop()
        for receiver in receivers:
            await receiver.stop()
        for instance in instances:
            instance.stop()
        postgres.drop(name)
