"""Scale benchmark: three `fxdesk serve` processes on one PostgreSQL and a 3-node JetStream
cluster (R3 stream); writers spread over the instances, N socket clients on each instance.

    .venv/bin/python bench/scale_bench.py [--clients 200] [--rate 20] [--seconds 20]

Everything runs on loopback: PostgreSQL from Debian's binaries (tests/pg.py), three nats-server
processes (tests/natscluster.py), the instances as in tests/scale.py. Latency is each client's
wall-clock receipt time minus the envelope's `ts` (stamped as the change is written, just
before its commit): commit to receipt, through outbox, relay, JetStream (replicated to three
nodes), each instance's consumer and hub. The baseline, measured in the same run, is the floor
under it: a core NATS message published on one node and received on another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from loadgen import paced, percentile
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.natscluster import NatsCluster
from tests.pg import Databases, PostgresServer
from tests.scale import FxdeskProcess, account, instance_env

TARGET_P99_MS = 150.0
CONNECT_CONCURRENCY = 32
DRAIN_SECONDS = 10.0
WRITERS = 6


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 0.5) * 1000:7.1f}  p99 {percentile(values, 0.99) * 1000:7.1f}"
        f"  max {max(values) * 1000:7.1f} ms"
    )


@dataclass
class Client:
    instance: int
    ws: ClientConnection
    frames: list[tuple[float, str]] = field(default_factory=list)


async def open_client(instance: int, host: str, token: str) -> Client:
    ws = await connect(
        f"ws://{host}/api/v1/ws",
        additional_headers={"Cookie": f"session_token={token}"},
        open_timeout=30,
        ping_interval=None,
        compression=None,
        max_queue=None,
    )
    assert json.loads(await ws.recv())["type"] == "hello"
    await ws.send(json.dumps({"op": "subscribe", "channels": ["tasks"], "since": None}))
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return Client(instance, ws)


async def receive(client: Client) -> None:
    with contextlib.suppress(Exception):
        async for text in client.ws:
            client.frames.append((time.time(), str(text)))


async def nats_baseline(cluster: NatsCluster, count: int, rate: float) -> list[float]:
    """Publish on node 0, receive on node 1: the cluster's own hop, under the same load."""
    import nats

    sub_nc = await nats.connect(cluster.node_urls[1])
    pub_nc = await nats.connect(cluster.node_urls[0])
    latencies: list[float] = []
    got = asyncio.Event()

    async def on_msg(msg: object) -> None:
        latencies.append(time.time() - float(msg.data))  # type: ignore[attr-defined]
        if len(latencies) >= count:
            got.set()

    await sub_nc.subscribe("bench.baseline", cb=on_msg)
    await sub_nc.flush()
    await asyncio.sleep(0.5)  # the interest reaches node 0
    for _ in range(count):
        await pub_nc.publish("bench.baseline", str(time.time()).encode())
        await asyncio.sleep(1 / rate)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(got.wait(), 5)
    await pub_nc.close()
    await sub_nc.close()
    return latencies


async def write(hosts: list[str], tokens: list[str], count: int, rate: float) -> tuple:
    """`count` task creations at `rate`/s in all, round-robin over writers and instances."""
    clients = [
        httpx.AsyncClient(
            base_url=f"http://{hosts[i % len(hosts)]}",
            headers={"Cookie": f"session_token={tokens[i]}"},
            timeout=30,
        )
        for i in range(len(tokens))
    ]
    created: list[int] = []
    errors: list[str] = []
    loop = asyncio.get_running_loop()

    async def one(i: int) -> None:
        client = clients[i % len(clients)]
        try:
            response = await client.post("/api/v1/tasks", json={"title": f"scale #{i}"})
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
            return
        if response.status_code == 201:
            created.append(response.json()["id"])
        else:
            errors.append(str(response.status_code))

    started = loop.time()
    await paced(count, rate, one, started)
    seconds = loop.time() - started
    for client in clients:
        await client.aclose()
    return created, errors, seconds


async def run(args: argparse.Namespace, base: Path) -> bool:
    pg = PostgresServer()
    pg.start()
    cluster = NatsCluster(base / "nats")
    instances: list[FxdeskProcess] = []
    clients: list[Client] = []
    try:
        databases = Databases(pg.admin_url)
        name = databases.create()
        await cluster.start()
        urls = cluster.node_urls
        shared = instance_env(databases.url(name), urls, replicas=3)
        instances = [
            FxdeskProcess(
                i, base / f"fxdesk{i}", {**shared, "FXDESK_NATS_URL": ",".join(urls[i:] + urls[:i])}
            )
            for i in range(3)
        ]
        for instance in instances:
            instance.start()
        await asyncio.gather(*(instance.wait_ready() for instance in instances))
        hosts = [instance.host for instance in instances]
        readers = [await account(host, f"reader{i}") for i, host in enumerate(hosts)]
        writers = [await account(hosts[i % 3], f"writer{i}") for i in range(WRITERS)]

        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def opened(i: int) -> Client:
            async with gate:
                return await open_client(i, hosts[i], readers[i])

        started = time.perf_counter()
        clients = list(
            await asyncio.gather(*(opened(i) for i in range(3) for _ in range(args.clients)))
        )
        print(f"{len(clients)} sockets open in {time.perf_counter() - started:.1f} s")
        readers_tasks = [asyncio.create_task(receive(client)) for client in clients]

        count = int(args.rate * args.seconds)
        baseline_task = asyncio.create_task(nats_baseline(cluster, min(count, 200), args.rate))
        created, errors, seconds = await write(hosts, writers, count, args.rate)
        baseline = await baseline_task
        expected = set(created)
        deadline = time.monotonic() + DRAIN_SECONDS

        def received(client: Client) -> set[int]:
            return {json.loads(text)["task"]["id"] for _, text in client.frames}

        while time.monotonic() < deadline:
            if all(expected <= received(client) for client in clients):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(0.5)
        for task in readers_tasks:
            task.cancel()

        per_instance: dict[int, list[float]] = {0: [], 1: [], 2: []}
        lost = duplicated = 0
        for client in clients:
            ids = Counter()
            for at, text in client.frames:
                envelope = json.loads(text)
                if envelope.get("event") != "task_created":
                    continue
                ids[envelope["task"]["id"]] += 1
                ts = datetime.fromisoformat(envelope["ts"]).timestamp()
                per_instance[client.instance].append(at - ts)
            lost += len(expected - set(ids))
            duplicated += sum(n - 1 for n in ids.values() if n > 1)
        every = [v for values in per_instance.values() for v in values]
        print(f"writes: {len(created)} ok, {len(errors)} failed, {len(created) / seconds:.1f}/s")
        for i, values in per_instance.items():
            print(f"instance {i} ({args.clients} clients): commit->receipt {spread(values)}")
        print(f"all {len(clients)} clients:           commit->receipt {spread(every)}")
        print(f"baseline (core NATS, node 0 -> node 1): {spread(baseline)}")
        p99 = percentile(every, 0.99)
        floor = percentile(baseline, 0.99)
        print(f"p99 ratio to the baseline: {p99 / floor:.1f}x" if floor > 0 else "")
        print(f"lost deliveries: {lost}, duplicated: {duplicated}")
        ok = p99 * 1000 < TARGET_P99_MS and lost == 0 and duplicated == 0 and not errors
        print(
            f"target: p99 < {TARGET_P99_MS:.0f} ms at {args.clients} clients per instance, "
            f"{args.rate:g} writes/s, nothing lost: {'MET' if ok else 'NOT MET'}"
        )
        return ok
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.ws.transport.abort()
        for instance in instances:
            instance.stop()
        await cluster.stop()
        pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="socket clients per instance")
    parser.add_argument("--rate", type=float, default=20.0, help="writes per second in all")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="fxdesk-scale-") as base:
        ok = asyncio.run(run(args, Path(base)))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
