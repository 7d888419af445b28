"""Fan-out benchmark: HTTP write -> outbox -> relay -> JetStream -> hub -> N WebSocket clients."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect

HERE = Path(__file__).resolve().parent
USAGE = """\
    .venv/bin/python bench/fanout.py [--clients 1000] [--rate 10] [--seconds 20] [--idle 10000]

The server (bench/fanout_server.py) runs as its own process with its own data dir and embedded
nats-server, so its CPU and memory are its own. Latency is the client's wall-clock receipt time
minus the envelope's `ts` (stamped when the outbox row is written, just before the commit).
"""
BENCH_USER, BENCH_PASSWORD = "fanout-bench", "fanout-bench-password"
TARGET_CLIENTS = 1000
TARGET_RATE = 10.0
TARGET_P99_MS = 100.0
TARGET_IDLE = 10_000
TARGET_IDLE_KB = 40.0

CONNECT_CONCURRENCY = 64  # handshakes in flight at once: far below the server's accept backlog
OPEN_TIMEOUT = 30.0
CONNECT_ATTEMPTS = 3
DRAIN_SECONDS = 10.0  # how long to wait for stragglers after the last POST
HEALTH_PROBES = 20
HOLD_SECONDS = 3.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

T = TypeVar("T")


# --------------------------------------------------------------------------- process helpers


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """In the child before exec: SIGTERM it if this benchmark dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the server


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (fields 14 and 15 of /proc/pid/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def source_state() -> str:
    """The commit the server's code comes from, and whether the tree had local changes."""
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def runqueue_wait(pid: int) -> float:
    """Seconds the main thread of `pid` spent runnable but waiting for a CPU (schedstat)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    return float("nan")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Server:
    pid: int
    base: str
    ws_url: str
    token: str
    log_file: Path


def server_env(data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "FXDESK_DATA_DIR": str(data_dir),
        "FXDESK_LOG_LEVEL": "WARNING",
        "FXDESK_LOG_FORMAT": "json",  # one line per record; cheap to write and to count
        "FXDESK_COOKIE_SECURE": "false",
        # Loopback only: no rate polling, and any outbound URL points at a closed local port.
        "FXDESK_RATES_AUTOSTART": "false",
        "FXDESK_CBR_BASE_URL": "http://127.0.0.1:9/",
        "FXDESK_CBR_MIRROR_URL": "http://127.0.0.1:9/",
        "FXDESK_APILAYER_BASE_URL": "http://127.0.0.1:9/",
    }
    for name in (
        "FXDESK_NATS_URL",
        "FXDESK_DATABASE_URL",
        "FXDESK_DEMO",
        "FXDESK_APILAYER_API_KEY",
    ):
        env.pop(name, None)  # always a private SQLite database and an embedded nats-server
    return env


def login(base: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": BENCH_USER, "password": BENCH_PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.cookies["session_token"])


@contextlib.contextmanager
def spawned_server(keep_log: Path | None, trace_memory: bool = False) -> Iterator[Server]:
    """Run bench/fanout_server.py on a free loopback port with a fresh data dir; stop it after."""
    data_dir = Path(tempfile.mkdtemp(prefix="fxdesk-fanout-"))
    env = server_env(data_dir)
    log_file = data_dir / "server.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fxdesk",
                "user",
                "create",
                BENCH_USER,
                "--password",
                BENCH_PASSWORD,
            ],
            env=env,
            cwd=data_dir,  # no stray .env from the caller's directory
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = free_port()
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(HERE / "fanout_server.py"), "--port", str(port)]
                + (["--tracemalloc"] if trace_memory else []),
                env=env,
                cwd=data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # up to 60 s
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} during start")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not come up within 60 s")
        yield Server(process.pid, base, f"ws://127.0.0.1:{port}/api/v1/ws", login(base), log_file)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                print("server did not stop within 60 s of SIGTERM; killing it", file=sys.stderr)
                process.kill()
                process.wait(timeout=10)
        if keep_log is not None and log_file.exists():
            shutil.copyfile(log_file, keep_log)
        shutil.rmtree(data_dir, ignore_errors=True)


def log_summary(log_file: Path) -> str:
    """`N records (levels...)` of the server's log so far, and its first error line if any."""
    levels: dict[str, int] = {}
    first_error = ""
    with contextlib.suppress(OSError), log_file.open(encoding="utf-8", errors="replace") as f:
        for count, line in enumerate(f):
            if count >= 1_000_000:
                break
            try:
                level = str(json.loads(line).get("level", "?"))
            except ValueError:
                level = "text"
            levels[level] = levels.get(level, 0) + 1
            if not first_error and level in ("error", "critical"):
                first_error = line.strip()[:300]
    total = sum(levels.values())
    text = f"{total} lines " + (str(levels) if levels else "")
    return text + (f"\n  first error: {first_error}" if first_error else "")


# --------------------------------------------------------------------------- clients


async def open_client(server: Server, channel: str) -> ClientConnection:
    """Connect with the session cookie, read hello, subscribe and wait for `subscribed`."""
    ws = await connect(
        server.ws_url,
        additional_headers={"Cookie": f"session_token={server.token}"},
        open_timeout=OPEN_TIMEOUT,
        ping_interval=None,  # the server pings every 20 s; the library answers in the background
        close_timeout=2,
        compression=None,
    )
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            hello = json.loads(await ws.recv())
            if hello.get("type") != "hello":
                raise RuntimeError(f"expected hello, got {hello}")
            await ws.send(json.dumps({"op": "subscribe", "channels": [channel], "since": None}))
            reply = json.loads(await ws.recv())
            if reply.get("type") != "subscribed":
                raise RuntimeError(f"expected subscribed, got {reply}")
    except BaseException:
        ws.transport.abort()
        raise
    return ws


@dataclass
class ConnectResult:
    clients: list[ClientConnection]
    failures: int
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.clients) / self.seconds if self.seconds else 0.0


async def open_many(server: Server, count: int, channel: str) -> ConnectResult:
    """Open `count` subscribed clients, at most CONNECT_CONCURRENCY handshakes at a time."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: dict[str, int] = {}

    async def one() -> ClientConnection | None:
        async with gate:
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    return await open_client(server, channel)
                except Exception as exc:
                    name = type(exc).__name__
                    errors[name] = errors.get(name, 0) + 1
                    await asyncio.sleep(0.2 * (attempt + 1))
            return None

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)))
    seconds = time.perf_counter() - started
    clients = [ws for ws in results if ws is not None]
    return ConnectResult(clients, count - len(clients), seconds, errors)


async def close_many(clients: list[ClientConnection], limit_seconds: float = 60.0) -> None:
    """Close cleanly (bounded in time), then abort whatever has not finished closing."""
    gate = asyncio.Semaphore(256)

    async def one(ws: ClientConnection) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await ws.close()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(one(ws) for ws in clients)), limit_seconds)
    for ws in clients:
        with contextlib.suppress(Exception):
            ws.transport.abort()


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
    tasks = []
    for i in range(count):
        slot = started + i / rate
        if slot > loop.time():
            await asyncio.sleep(slot - loop.time())
        out.worst_late = max(out.worst_late, loop.time() - slot)
        tasks.append(asyncio.create_task(post(i)))
    await asyncio.gather(*tasks)
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


def heap_line(heap: dict[str, Any]) -> str:
    if not heap:
        return "n/a"
    full = heap.get("full_collection_ms")
    return (
        f"{heap['objects'] / 1e6:.2f} M objects tracked by the GC"
        + (f", a full collection takes {full:.0f} ms" if full is not None else "")
        + (f", {heap['frozen'] / 1e6:.2f} M frozen" if heap["frozen"] else "")
        + (f", thresholds {'/'.join(map(str, heap['threshold']))}" if "threshold" in heap else "")
    )


async def probe_loop_lag(out: list[float], seconds: float, tick: float = 0.01) -> None:
    """Record how late a `tick` timer fires on this loop, for at most `seconds`."""
    loop = asyncio.get_running_loop()
    for _ in range(int(seconds / tick)):
        expected = loop.time() + tick
        await asyncio.sleep(tick)
        out.append(max(0.0, loop.time() - expected))


def gc_summary(pauses: list[tuple[int, float]]) -> str:
    if not pauses:
        return "no collection during the run"
    parts = []
    for gen in (0, 1, 2):
        times = [sec for g, sec in pauses if g == gen]
        if times:
            parts.append(f"gen{gen} {len(times)}x max {max(times) * 1000:.1f} ms")
    return ", ".join(parts) + f"; total {sum(sec for _, sec in pauses) * 1000:.0f} ms"


def parse_ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(values: list[float], unit: float = 1000.0) -> str:
    """`p50 .. p99 .. max` of `values` (seconds by default), in ms."""
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 0.5) * unit:.1f}  p99 {percentile(values, 0.99) * unit:.1f}  "
        f"max {max(values) * unit:.1f} ms"
    )


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


# --------------------------------------------------------------------------- main


def shorten_path(site: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in site:
            return site.split(marker, 1)[1]
    return site


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


async def run(args: argparse.Namespace, server: Server) -> list[str]:
    lines: list[str] = []
    load_at_start = load_average()
    source = source_state()
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(
        base_url=server.base,
        headers={"Authorization": f"Bearer {server.token}"},
        limits=limits,
        timeout=10,
    ) as http:
        # Warm-up: the first requests compile SQL, import lazily, create the stream consumer.
        for i in range(3):
            (
                await http.post("/api/v1/bench/emit", json={"text": f"warm-up {i}"}, timeout=120)
            ).raise_for_status()
        warm = await open_many(server, 4, "chat")
        await close_many(warm.clients)
        await settle()
        heap_at_start = await reset_server_stats(http)

        rss_before = rss_kb(server.pid)
        connected = await timed(
            f"connecting {args.clients} clients", open_many(server, args.clients, "chat")
        )
        await settle()
        rss_after = rss_kb(server.pid)
        n = len(connected.clients)
        per_client_kb = (rss_after - rss_before) / n if n else float("nan")
        print(
            f"    {n} connected in {connected.seconds:.2f} s ({connected.rate:.0f}/s), "
            f"{connected.failures} failed {connected.errors or ''}",
            flush=True,
        )

        fan: FanoutResult | None = None
        if n:
            fan = await timed(
                f"emitting {args.rate:g} events/s for {args.seconds:g} s to {n} clients",
                fanout(server, http, connected.clients, args.rate, args.seconds),
            )

        idle: ConnectResult | None = None
        idle_rss = (0, 0)
        health: tuple[int, list[float]] = (0, [])
        idle_open_after_hold = 0
        mem_sites: dict[str, Any] = {}
        heap_idle: dict[str, Any] = {}
        rss_after_gc = 0
        if args.idle:
            await settle()
            if args.mem_profile:
                await http.post("/api/v1/bench/mem/baseline", timeout=120)
            idle_rss_before = rss_kb(server.pid)
            idle = await timed(
                f"opening {args.idle} idle connections", open_many(server, args.idle, "chat")
            )
            await settle()
            idle_rss = (idle_rss_before, rss_kb(server.pid))
            if args.mem_profile and idle.clients:
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
        await timed("closing fan-out clients", close_many(connected.clients))

    lines.append("=" * 78)
    lines.append(
        "fxdesk fan-out benchmark  (HTTP POST -> outbox -> relay -> JetStream -> hub -> WS)"
    )
    lines.append(
        f"cpus={os.cpu_count()}  load avg at start {load_at_start}  "
        f"server pid={server.pid} (own process, uvicorn: uvloop, httptools, websockets-sansio)"
    )
    lines.append(f"source             {source} (src/ as the server imported it)")
    if args.mem_profile:
        lines.append("DIAGNOSTIC RUN: server under tracemalloc (slower, RSS inflated)")
    lines.append("-" * 78)
    lines.append(f"connect            {n}/{args.clients} clients in {connected.seconds:.2f} s")
    lines.append(
        f"  rate             {connected.rate:.0f} connections/s (handshake + hello + subscribe)"
    )
    lines.append(f"  server heap      before connecting: {heap_line(heap_at_start)}")
    lines.append(
        f"  server RSS       {rss_before / 1024:.1f} MB -> {rss_after / 1024:.1f} MB  = "
        f"{per_client_kb:.1f} KB per connection"
    )
    if fan is not None:
        em = fan.emission
        frames_wanted = len(em.seqs) * n
        lines.append(
            f"fan-out            {len(em.seqs)} events posted in {em.seconds:.2f} s "
            f"({len(em.seqs) / em.seconds if em.seconds else 0:.1f}/s, paced loop at worst "
            f"{em.worst_late * 1000:.0f} ms late), {em.errors} POST errors"
        )
        lines.append(f"  POST latency     {spread(em.post_latencies)}")
        lines.append(f"  end-to-end       {spread(fan.latencies)}  ({len(fan.latencies)} frames)")
        lines.append(f"    ts -> hub      {spread(fan.to_hub)}  (commit, relay, JetStream)")
        lines.append(f"    hub queueing   {spread(fan.hub_queue)}  (offer to every client)")
        lines.append(f"    hub -> client  {spread(fan.hub_to_client)}  (pumps, sockets, client)")
        lines.append(f"    first -> last  {spread(fan.fanout_span)}  (per event, across clients)")
        lines.append(f"  server loop lag  {spread(fan.loop_lag)}  (a 10 ms timer, how late)")
        lines.append(f"  server GC        {gc_summary(fan.gc_pauses)}")
        lines.append(f"  server heap      {heap_line(fan.heap)}")
        lines.append(f"  client loop lag  {spread(fan.client_lag)}")
        lines.append(
            f"  delivered        {fan.delivered}/{frames_wanted} frames in "
            f"{fan.delivery_seconds:.2f} s = "
            f"{fan.delivered / fan.delivery_seconds if fan.delivery_seconds else 0:.0f} events/s"
        )
        lines.append(
            f"  exactly once     {fan.complete_clients}/{n} clients got every event once, in "
            f"order; missing {fan.missing}, duplicates {fan.duplicates}, "
            f"out of order {fan.out_of_order}, unexpected {fan.unexpected}"
        )
        lines.append(
            f"  CPU              server {fan.server_cpu / fan.wall * 100:.0f}% of a core, "
            f"this client {fan.client_cpu / fan.wall * 100:.0f}% (over {fan.wall:.1f} s); "
            f"server {fan.server_cpu / max(fan.delivered, 1) * 1e6:.0f} us per frame delivered"
        )
        lines.append(
            f"  CPU contention   server loop thread waited {fan.server_wait:.2f} s for a CPU, "
            f"this client {fan.client_wait:.2f} s"
        )
    if idle is not None:
        m = len(idle.clients)
        idle_kb = (idle_rss[1] - idle_rss[0]) / m if m else float("nan")
        ok, health_lat = health
        lines.append(
            f"idle               {m}/{args.idle} opened in {idle.seconds:.2f} s "
            f"({idle.rate:.0f}/s, {CONNECT_CONCURRENCY} at a time), {idle.failures} failed"
        )
        lines.append(
            f"  server RSS       {idle_rss[0] / 1024:.1f} MB -> {idle_rss[1] / 1024:.1f} MB  = "
            f"{idle_kb:.1f} KB per connection (the {n} fan-out clients stay open)"
        )
        lines.append(
            f"  after full GC    {rss_after_gc / 1024:.1f} MB = "
            f"{(rss_after_gc - idle_rss[0]) / m if m else float('nan'):.1f} KB per connection "
            "(cyclic garbage collected; RSS rarely shrinks)"
        )
        lines.append(
            f"  GET /health      {ok}/{HEALTH_PROBES} OK while held, "
            f"p50 {percentile(health_lat, 0.5) * 1000:.1f} ms  "
            f"max {max(health_lat, default=float('nan')) * 1000:.1f} ms"
        )
        lines.append(f"  still open       {idle_open_after_hold}/{m} after {HOLD_SECONDS:g} s")
        lines.append(f"  server heap      {heap_line(heap_idle)}")
    if mem_sites.get("sites"):
        lines.append(
            f"tracemalloc        {mem_sites['kb_each']:.1f} KB of Python heap per idle "
            "connection (--mem-profile: RSS figures above include tracemalloc's own overhead)"
        )
        lines.append("  allocation sites (line that allocated):")
        for site in mem_sites["sites"]:
            lines.append(
                f"  {site['kb_each']:6.2f} KB {site['blocks_each']:5.1f} blocks  "
                f"{shorten_path(site['site'])}"
            )
        lines.append(
            "  by package of that owner: "
            + ", ".join(f"{k} {v:.1f} KB" for k, v in mem_sites.get("packages", {}).items())
        )
        lines.append("  by owner (innermost caller outside the standard library):")
        for site in mem_sites.get("files", []):
            lines.append(f"  {site['kb_each']:6.2f} KB  {shorten_path(site['site'])}")
    lines.append(f"server log         {log_summary(server.log_file)}")
    lines.append("-" * 78)
    lines.append("targets")
    if fan is not None:
        p99 = percentile(fan.latencies, 0.99) * 1000
        shape_ok = n >= TARGET_CLIENTS and args.rate >= TARGET_RATE
        clean = fan.missing == 0 and fan.duplicates == 0 and fan.out_of_order == 0
        ok = shape_ok and p99 < TARGET_P99_MS and clean and n == args.clients
        note = "" if shape_ok else "  (run below target shape)"
        lines.append(
            f"  {TARGET_CLIENTS} clients @ {TARGET_RATE:g} ev/s, p99 < {TARGET_P99_MS:g} ms, "
            f"every event once:  p99 {p99:.1f} ms, {n} clients, "
            f"{fan.missing + fan.duplicates + fan.out_of_order} delivery faults  "
            f"{verdict(ok)}{note}"
        )
    else:
        lines.append(f"  {TARGET_CLIENTS} clients @ {TARGET_RATE:g} ev/s:  no clients  MISSED")
    if idle is not None:
        m = len(idle.clients)
        idle_kb = (idle_rss[1] - idle_rss[0]) / m if m else float("nan")
        ok = (
            m >= TARGET_IDLE
            and idle_kb < TARGET_IDLE_KB
            and health[0] == HEALTH_PROBES
            and idle_open_after_hold == m
        )
        lines.append(
            f"  {TARGET_IDLE} idle connections < {TARGET_IDLE_KB:g} KB each, /health answers:  "
            f"{m} held, {idle_kb:.1f} KB each, /health {health[0]}/{HEALTH_PROBES}  {verdict(ok)}"
        )
    else:
        lines.append("  idle connections:  skipped (--idle 0)")
    lines.append("=" * 78)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=TARGET_CLIENTS)
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle", type=int, default=TARGET_IDLE, help="0 skips the idle phase")
    parser.add_argument("--server-log", type=Path, help="keep the server's log at this path")
    parser.add_argument(
        "--mem-profile",
        action="store_true",
        help="diagnostic: run the server under tracemalloc and list what each idle connection "
        "allocates (slows the server and inflates RSS)",
    )
    args = parser.parse_args()
    if args.clients < 0 or args.rate <= 0 or args.seconds <= 0 or args.idle < 0:
        parser.error("--clients and --idle must be >= 0; --rate and --seconds > 0")

    signal.signal(signal.SIGTERM, exit_on_sigterm)
    limit = raise_fd_limit()
    needed = args.clients + args.idle + 64
    if needed > limit:
        parser.error(f"{needed} sockets needed but the fd limit is {limit}")

    runner_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        runner_factory = uvloop.new_event_loop
    with (
        spawned_server(args.server_log, args.mem_profile) as server,
        asyncio.Runner(loop_factory=runner_factory) as runner,
    ):
        lines = runner.run(run(args, server))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
