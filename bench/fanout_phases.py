"""The fan-out benchmark's phases: events posted at a steady rate to N clients, and the probes
that run meanwhile (server and client loop lag, GC, the server's stage timings)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
from fanout_clients import ConnectResult, close_many, open_many
from fanout_process import Server, cpu_seconds, own_cpu_seconds, rss_kb, runqueue_wait
from loadgen import paced
from websockets.asyncio.client import ClientConnection

DRAIN_SECONDS = 10.0  # how long to wait for stragglers after the last POST
HEALTH_PROBES = 20
HOLD_SECONDS = 3.0

T = TypeVar("T")


# --------------------------------------------------------------------------- fan-out phase


@dataclass
class Receiver:
    """One client's frames as (receipt wall-clock time, text); parsed after the run."""

    frames: list[tuple[float, str]] = field(default_factory=list)


async def receive(
    ws: ClientConnection, receiver: Receiver, max_frames: int, tally: list[int]
) -> None:
    for _ in range(max_frames):
        text = await ws.recv()
        receiver.frames.append((time.time(), str(text)))
        tally[0] += 1


@dataclass
class Emission:
    seqs: list[int] = field(default_factory=list)
    post_latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    worst_late: float = 0.0  # how late the paced loop fired a POST, at worst


async def post_events(http: httpx.AsyncClient, count: int, rate: float) -> Emission:
    """POST `count` events, one every 1/rate s (each in its own task, so a slow one can't
    delay the next)."""
    loop = asyncio.get_running_loop()
    out = Emission()

    async def post(i: int) -> None:
        started = time.perf_counter()
        try:
            response = await http.post("/api/v1/bench/emit", json={"text": f"fan-out #{i}"})
            response.raise_for_status()
            out.seqs.append(int(response.json()["seq"]))
        except (httpx.HTTPError, KeyError, ValueError):
            out.errors += 1
            return
        out.post_latencies.append(time.perf_counter() - started)

    started = loop.time()
    out.worst_late = await paced(count, rate, post, started)
    end = started + count / rate  # the schedule's end: `count` slots of 1/rate seconds
    if end > loop.time():
        await asyncio.sleep(end - loop.time())
    out.seconds = loop.time() - started
    out.seqs.sort()
    return out


async def reset_server_stats(http: httpx.AsyncClient, collect: bool = True) -> dict[str, Any]:
    """Reset the bench server's probes; returns its heap size and (`collect`) how long one full
    collection takes. Not collecting leaves the server's GC state as the run left it."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = await http.post(
            "/api/v1/bench/stats/reset",
            params={"collect": collect},
            timeout=120,
        )
        if response.status_code == 200:
            return dict(response.json())
    return {}


async def probe_loop_lag(out: list[float], seconds: float, tick: float = 0.01) -> None:
    """Record how late a `tick` timer fires on this loop, for at most `seconds`."""
    loop = asyncio.get_running_loop()
    for _ in range(int(seconds / tick)):
        expected = loop.time() + tick
        await asyncio.sleep(tick)
        out.append(max(0.0, loop.time() - expected))


def parse_ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


@dataclass
class FanoutResult:
    emission: Emission
    latencies: list[float] = field(default_factory=list)  # seconds, one per frame
    delivered: int = 0
    delivery_seconds: float = 0.0
    complete_clients: int = 0
    missing: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    wall: float = 0.0
    # Stage breakdown, from the bench server's instrumentation (empty if unavailable).
    to_hub: list[float] = field(default_factory=list)  # envelope ts -> hub took it off stream
    hub_queue: list[float] = field(default_factory=list)  # hub queued it for every client
    hub_to_client: list[float] = field(default_factory=list)  # hub took it -> client receipt
    fanout_span: list[float] = field(default_factory=list)  # first to last client, per event
    loop_lag: list[float] = field(default_factory=list)
    gc_pauses: list[tuple[int, float]] = field(default_factory=list)
    client_lag: list[float] = field(default_factory=list)
    server_wait: float = 0.0  # server loop thread runnable but not running (CPU contention)
    client_wait: float = 0.0
    heap: dict[str, Any] = field(default_factory=dict)  # server heap with the clients connected


async def fanout(
    server: Server,
    http: httpx.AsyncClient,
    clients: list[ClientConnection],
    rate: float,
    seconds: float,
) -> FanoutResult:
    count = max(1, round(rate * seconds))
    receivers = [Receiver() for _ in clients]
    tally = [0]
    readers = [
        asyncio.create_task(receive(ws, receiver, 2 * count + 16, tally))
        for ws, receiver in zip(clients, receivers, strict=True)
    ]
    await reset_server_stats(http, collect=False)
    client_lag: list[float] = []
    lag_probe = asyncio.create_task(probe_loop_lag(client_lag, seconds + DRAIN_SECONDS + 5))
    server_cpu0, client_cpu0, wall0 = cpu_seconds(server.pid), own_cpu_seconds(), time.time()
    server_wait0, client_wait0 = runqueue_wait(server.pid), runqueue_wait(os.getpid())
    emission = await post_events(http, count, rate)
    wanted = len(emission.seqs) * len(clients)
    for _ in range(int(DRAIN_SECONDS / 0.05)):  # bounded wait for the last deliveries
        if tally[0] >= wanted:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # late duplicates, if any, would arrive now
    result = FanoutResult(
        emission=emission,
        server_cpu=cpu_seconds(server.pid) - server_cpu0,
        client_cpu=own_cpu_seconds() - client_cpu0,
        wall=time.time() - wall0,
        server_wait=runqueue_wait(server.pid) - server_wait0,
        client_wait=runqueue_wait(os.getpid()) - client_wait0,
        client_lag=client_lag,
    )
    lag_probe.cancel()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    stats: dict[str, Any] = {}
    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = await http.get("/api/v1/bench/stats", timeout=30)
        if response.status_code == 200:
            stats = response.json()
    result.heap = await reset_server_stats(http)  # a full collection, now that it's measured
    hub_seen = {int(seq): times for seq, times in stats.get("hub", {}).items()}
    result.loop_lag = [float(lag) for lag in stats.get("loop_lag", [])]
    result.gc_pauses = [(int(gen), float(sec)) for gen, sec in stats.get("gc", [])]

    expected = set(emission.seqs)
    last_receipt = wall0
    first_last: dict[int, list[float]] = {}
    ts_of: dict[int, float] = {}
    for receiver in receivers:
        got: list[int] = []
        for received_at, text in receiver.frames:
            message: dict[str, Any] = json.loads(text)
            seq = message.get("seq")
            if message.get("event") != "chat_message" or seq not in expected:
                result.unexpected += 1
                continue
            got.append(seq)
            if seq not in ts_of:
                ts_of[seq] = parse_ts(message["ts"])
            result.latencies.append(received_at - ts_of[seq])
            last_receipt = max(last_receipt, received_at)
            span = first_last.setdefault(seq, [received_at, received_at])
            span[0], span[1] = min(span[0], received_at), max(span[1], received_at)
            if seq in hub_seen:
                result.hub_to_client.append(received_at - hub_seen[seq][0])
        unique = set(got)
        result.delivered += len(got)
        result.duplicates += len(got) - len(unique)
        result.missing += len(expected - unique)
        result.out_of_order += sum(1 for a, b in itertools.pairwise(got) if b <= a)
        if unique == expected and len(got) == len(expected):
            result.complete_clients += 1
    result.delivery_seconds = last_receipt - wall0
    result.fanout_span = [last - first for first, last in first_last.values()]
    for seq, ts in ts_of.items():
        if seq in hub_seen:
            received, queued = hub_seen[seq]
            result.to_hub.append(received - ts)
            result.hub_queue.append(queued - received)
    return result


# --------------------------------------------------------------------------- idle phase


async def probe_health(http: httpx.AsyncClient) -> tuple[int, list[float]]:
    ok, latencies = 0, []
    for _ in range(HEALTH_PROBES):
        started = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            response = await http.get("/health", timeout=10)
            if response.status_code == 200:
                ok += 1
                latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)
    return ok, latencies


async def settle() -> None:
    await asyncio.sleep(1.0)


async def timed(label: str, coro: Awaitable[T]) -> T:
    print(f"... {label}", flush=True)
    return await coro


@dataclass
class IdleResult:
    connected: ConnectResult
    rss: tuple[int, int]  # KB before and after opening them
    rss_after_gc: int
    health: tuple[int, list[float]]  # /health probes answered 200, and their latencies
    open_after_hold: int
    heap: dict[str, Any]
    mem_sites: dict[str, Any] = field(default_factory=dict)  # --mem-profile only


async def idle_phase(
    server: Server, http: httpx.AsyncClient, count: int, mem_profile: bool
) -> IdleResult:
    """Open `count` idle connections: what they cost, and whether the server still answers."""
    await settle()
    if mem_profile:
        await http.post("/api/v1/bench/mem/baseline", timeout=120)
    idle_rss_before = rss_kb(server.pid)
    idle = await timed(f"opening {count} idle connections", open_many(server, count, "chat"))
    await settle()
    idle_rss = (idle_rss_before, rss_kb(server.pid))
    mem_sites: dict[str, Any] = {}
    if mem_profile and idle.clients:
        response = await http.get(
            "/api/v1/bench/mem/diff",
            params={"per": len(idle.clients), "limit": 30},
            timeout=900,
        )
        mem_sites = response.json()
    health = await probe_health(http)
    heap_idle = await reset_server_stats(http)  # includes one full collection
    rss_after_gc = rss_kb(server.pid)
    await asyncio.sleep(HOLD_SECONDS)
    idle_open_after_hold = sum(
        1 for ws in idle.clients if ws.close_code is None and ws.state.name == "OPEN"
    )
    print(
        f"    {len(idle.clients)} open in {idle.seconds:.2f} s ({idle.rate:.0f}/s), "
        f"{idle.failures} failed {idle.errors or ''}",
        flush=True,
    )
    await timed("closing idle connections", close_many(idle.clients))
    return IdleResult(
        idle, idle_rss, rss_after_gc, health, idle_open_after_hold, heap_idle, mem_sites
    )


@dataclass
class Measured:
    """Everything one run measured, for the report."""

    load_at_start: str
    source: str
    heap_at_start: dict[str, Any]
    connected: ConnectResult  # the fan-out clients
    rss_before: int  # KB, before and after connecting them
    rss_after: int
    fan: FanoutResult | None  # None: no client connected
    idle: IdleResult | None  # None: --idle 0
