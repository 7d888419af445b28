"""Fan-out benchmark: HTTP write -> outbox -> relay -> JetStream -> hub -> N WebSocket clients."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
from fanout_clients import close_many, open_many
from fanout_phases import Measured, fanout, idle_phase, reset_server_stats, settle, timed
from fanout_process import (
    Server,
    exit_on_sigterm,
    load_average,
    raise_fd_limit,
    rss_kb,
    source_state,
    spawned_server,
)
from fanout_report import TARGET_CLIENTS, TARGET_IDLE, TARGET_RATE, report

USAGE = """\
    .venv/bin/python bench/fanout.py [--clients 1000] [--rate 10] [--seconds 20] [--idle 10000]

The server (bench/fanout_server.py) runs as its own process with its own data dir and embedded
nats-server, so its CPU and memory are its own. Latency is the client's wall-clock receipt time
minus the envelope's `ts` (stamped when the outbox row is written, just before the commit).
"""


async def measure(args: argparse.Namespace, server: Server) -> Measured:
    """Warm up, connect the fan-out clients, emit to them, then hold the idle connections."""
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
        print(
            f"    {n} connected in {connected.seconds:.2f} s ({connected.rate:.0f}/s), "
            f"{connected.failures} failed {connected.errors or ''}",
            flush=True,
        )
        fan = None
        if n:
            fan = await timed(
                f"emitting {args.rate:g} events/s for {args.seconds:g} s to {n} clients",
                fanout(server, http, connected.clients, args.rate, args.seconds),
            )
        idle = await idle_phase(server, http, args.idle, args.mem_profile) if args.idle else None
        await timed("closing fan-out clients", close_many(connected.clients))
    return Measured(
        load_at_start, source, heap_at_start, connected, rss_before, rss_after, fan, idle
    )


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
        lines = report(args, server, runner.run(measure(args, server)))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
