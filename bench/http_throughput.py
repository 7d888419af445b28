"""Requests/s of GET /health and of an authenticated GET /api/v1/auth/me, in one run.

The two are measured in alternating one-second rounds, so a machine that gets slower or faster
during the run (a shared VM) weighs on both alike; the ratio printed is the median of the
rounds' ratios, beside the totals.

    make bench                                  # spawns a server with its own data dir
    .venv/bin/python bench/http_throughput.py --url http://127.0.0.1:8000 \
        --username alice --password '...'       # against a server you run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, run_load
from server import login_cookie, spawned_server

BENCH_USER, BENCH_PASSWORD = "bench-user", "bench-password-123"


def _line(name: str, result: LoadResult) -> str:
    return (
        f"{name:<22} {result.rate:>9.0f} req/s   p50 {result.percentile(0.5) * 1000:6.2f} ms   "
        f"p99 {result.percentile(0.99) * 1000:6.2f} ms   errors {result.errors}/{result.requests}"
    )


async def measure(base: str, cookie: str, connections: int, seconds: float) -> None:
    await run_load(f"{base}/health", connections=connections, seconds=1)  # warm-up
    health, me, ratios = LoadResult(), LoadResult(), []
    for _ in range(max(1, round(seconds))):
        health_round = await run_load(f"{base}/health", connections=connections, seconds=1)
        me_round = await run_load(
            f"{base}/api/v1/auth/me",
            connections=connections,
            seconds=1,
            headers={"Cookie": cookie},
        )
        ratios.append(me_round.rate / health_round.rate)
        health.merge(health_round)
        me.merge(me_round)
    print(
        f"connections={connections}, {len(ratios)} alternating 1 s rounds per endpoint, "
        "one server worker"
    )
    print(_line("GET /health", health))
    print(_line("GET /api/v1/auth/me", me))
    print(
        f"ratio auth/me : health = {statistics.median(ratios):.2f} (median of rounds; "
        f"totals {me.rate / health.rate:.2f}, rounds {min(ratios):.2f}-{max(ratios):.2f})"
    )
    if me.errors or health.errors:
        raise SystemExit("errors during the run: " + str({**health.statuses, **me.statuses}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="base URL of a running fxdesk; omitted = spawn one")
    parser.add_argument("--username", default=BENCH_USER)
    parser.add_argument("--password", default=BENCH_PASSWORD)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    context = (
        contextlib.nullcontext(args.url)
        if args.url
        else spawned_server([(BENCH_USER, BENCH_PASSWORD, "user")])
    )
    with context as base:
        cookie = login_cookie(base, args.username, args.password)
        asyncio.run(measure(base, cookie, args.connections, args.seconds))


if __name__ == "__main__":
    main()
