"""Rates read path: requests/s of /api/v1/rates/latest and /api/v1/convert beside bare FastAPI
endpoints returning a constant body of the same size (same run, one worker), and /rates/get
page latency with 100 000 rate rows stored.

    .venv/bin/python bench/rates_bench.py [--seconds 8] [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, http_request, run_load
from server import free_port, login_cookie

HERE = Path(__file__).resolve().parent
CONVERT = "/api/v1/convert?from=USD&to=EUR&amount=1000"


@contextlib.contextmanager
def rates_server(rows: int) -> Iterator[str]:
    data_dir = Path(tempfile.mkdtemp(prefix="fxdesk-rates-bench-"))
    port = free_port()
    env = {**os.environ, "FXDESK_LOG_LEVEL": "WARNING"}
    env.pop("FXDESK_NATS_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "rates_server.py"),
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--rows",
            str(rows),
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            if process.poll() is not None:
                raise RuntimeError("rates bench server exited")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def line(name: str, result: LoadResult) -> str:
    p50, p99 = result.percentile(0.5) * 1000, result.percentile(0.99) * 1000
    return (
        f"{name:<40} {result.rate:>8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
        f"   errors {result.errors}/{result.requests}"
    )


async def measure(base: str, cookie: str, seconds: float) -> None:
    headers = {"Cookie": cookie}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        latest = await client.get("/api/v1/rates/latest")
        convert = await client.get(CONVERT)
        latest.raise_for_status()
        convert.raise_for_status()
        await client.post(
            "/bench/bodies", json={"latest": latest.json(), "convert": convert.json()}
        )
        print(f"bodies: latest {len(latest.content)} B, convert {len(convert.content)} B")
        print(f"convert 1000 USD->EUR: {convert.json()}")

    async def run(path: str, connections: int = 16) -> LoadResult:
        return await run_load(
            f"{base}{path}", connections=connections, seconds=seconds, headers=headers
        )

    counter = itertools.count(1)

    def new_amount() -> bytes:
        """A conversion never asked before, so it is computed, not answered from memory."""
        amount = f"{next(counter) / 100:.2f}"
        path = f"/api/v1/convert?from=USD&to=EUR&amount={amount}"
        return http_request("GET", f"{base}{path}", headers)

    await run("/api/v1/rates/latest")  # warm-up
    results = {
        "GET /api/v1/rates/latest": await run("/api/v1/rates/latest"),
        "bare, same body": await run("/bench/bare/latest"),
        "bare + session check, same body": await run("/bench/bare-auth/latest"),
        "GET /api/v1/convert": await run(CONVERT),
        "bare, same body ": await run("/bench/bare/convert"),
        "bare + session check, same body ": await run("/bench/bare-auth/convert"),
        "GET /api/v1/convert, a new amount each": await run_load(
            f"{base}{CONVERT}", connections=16, seconds=seconds, make_request=new_amount
        ),
    }
    print(f"{seconds:.0f}s each, 16 keep-alive connections, one server worker")
    for name, result in results.items():
        print(line(name, result))
    latest_ratio = results["GET /api/v1/rates/latest"].rate / results["bare, same body"].rate
    convert_ratio = results["GET /api/v1/convert"].rate / results["bare, same body "].rate
    print(
        f"latest / bare = {latest_ratio:.2f}   convert / bare = {convert_ratio:.2f}"
        "   (target >= 1.00; a repeated question is answered from memory, a new one computed)"
    )

    pages = LoadResult()
    for offset in (0, 1000, 10_000, 50_000, 99_000):
        part = await run_load(
            f"{base}/rates/get?limit=100&offset={offset}",
            connections=1,
            seconds=seconds / 4,
            headers=headers,
        )
        pages.requests += part.requests
        pages.errors += part.errors
        pages.latencies += part.latencies
        pages.seconds += part.seconds
    history = await run("/rates/get/code?code=USD", connections=1)
    print(line("GET /rates/get (100/page, 5 offsets), 1 conn", pages))
    print(line("GET /rates/get/code?code=USD, 1 conn", history))
    p99 = pages.percentile(0.99) * 1000
    print(f"target: /rates/get p99 < 50 ms -> {p99:.1f} ms ({'met' if p99 < 50 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with rates_server(args.rows) as base:
        cookie = login_cookie(base, "bench-user", "bench-password-123")
        asyncio.run(measure(base, cookie, args.seconds))


if __name__ == "__main__":
    main()
