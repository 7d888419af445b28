"""A small keep-alive HTTP/1.1 load generator on asyncio streams, shared by the benchmarks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def merge(self, part: LoadResult) -> None:
        """Add another run's counts and latencies to this one (e.g. the rounds of a run)."""
        self.requests += part.requests
        self.errors += part.errors
        self.seconds += part.seconds
        self.latencies.extend(part.latencies)
        for status, count in part.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (nearest rank); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def paced(
    count: int, rate: float, send: Callable[[int], Awaitable[None]], start: float | None = None
) -> float:
    """Start `send(0)` .. `send(count - 1)` one every 1/rate s of the loop's clock from `start`
    (now if None), each in its own task so that a slow one can't delay the next; wait for them
    all. Returns how late, at worst, one was started."""
    loop = asyncio.get_running_loop()
    started = loop.time() if start is None else start
    tasks = []
    worst_late = 0.0
    for i in range(count):
        slot = started + i / rate
        if slot > loop.time():
            await asyncio.sleep(slot - loop.time())
        worst_late = max(worst_late, loop.time() - slot)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)
    return worst_late


def http_request(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    """One raw HTTP/1.1 request, ready to write to a keep-alive connection."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_load(
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    make_request: Callable[[], bytes] | None = None,
    max_requests: int | None = None,
) -> LoadResult:
    """Send requests over `connections` keep-alive connections for `seconds`; count and time
    each. GET `url` unless `make_request` builds each request (e.g. a POST with a fresh body)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    fixed = http_request("GET", url, headers)
    result = LoadResult()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                if max_requests is not None and result.requests >= max_requests:
                    break
                request = make_request() if make_request else fixed
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.requests += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status >= 400:
                    result.errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result
