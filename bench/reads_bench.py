"""Read routes beside GET /health, on SQLite and on PostgreSQL, with a realistic amount stored.

For each database one `fxdesk serve` worker is spawned (rates autostart off) over a database
holding 90 days of rate tables (the recorded CBR fixtures, through fxdesk's ingestion), 200
chat messages and 100 000 tasks with their history (bench/reads_data.py). Each route is then
measured, authenticated, in alternating one-second rounds beside GET /health, so a machine
that speeds up or slows down weighs on both alike; the ratio is the median of the rounds'.
A round ends when its last request in flight is answered, so slow routes stretch the run.

"repeated" routes ask the same question on every request; "uncacheable" ones a different one
each time (another sort, status and page of the task list, another conversion amount), so
no memory of earlier answers can serve them.

    make bench-reads
    .venv/bin/python bench/reads_bench.py [--db sqlite|postgresql|both] [--seconds 5]
        [--tasks 100000] [--connections 16]

Prints a table per database (route | kind | req/s | p99 ms | ratio), then the targets with
PASS/FAIL. It is a measurement: it exits 0 whether the targets are met or not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import secrets
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.pg

from loadgen import LoadResult, http_request, run_load
from reads_data import NEWEST, SERIES_START, Loaded, load_all
from server import login_cookie, spawned_server
from tests.pg import Databases, postgres_server

from fxdesk.tasks.schemas import TaskSort

USER, PASSWORD = "bench-user", "bench-password-123"
DATABASES = ("sqlite", "postgresql")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
LATEST = "/api/v1/rates/latest"
CONVERT = "/api/v1/convert?from=USD&to=EUR&amount=1000"
REPEATED_TARGET, UNCACHEABLE_TARGET, HOT_TARGET = 0.5, 0.2, 0.9
# One connection: a slow route's warm-up then waits for one request, not for a queue of them.
WARM_UP_SECONDS, WARM_UP_CONNECTIONS = 0.3, 1


def repeated_routes(task_id: int) -> dict[str, str]:
    """Label -> path; every request of a run asks the same."""
    return {
        LATEST: LATEST,
        CONVERT: CONVERT,
        "/api/v1/currencies": "/api/v1/currencies",
        f"/api/v1/rates/{NEWEST}": f"/api/v1/rates/{NEWEST}",
        "/api/v1/rates/series?codes=USD,EUR (90 days)": (
            f"/api/v1/rates/series?codes=USD,EUR&start={SERIES_START}&end={NEWEST}"
        ),
        "/api/v1/chat/messages": "/api/v1/chat/messages",
        # the board's default view: every status, newest first, 50 a page
        "/api/v1/tasks": "/api/v1/tasks",
        "/api/v1/tasks/{id}": f"/api/v1/tasks/{task_id}",
        "/api/v1/tasks/{id}/history": f"/api/v1/tasks/{task_id}/history",
        "/rates/get/code?code=USD": "/rates/get/code?code=USD",
        "/rates/get": "/rates/get",
    }


def uncacheable_routes() -> dict[str, Callable[[int], str]]:
    """Label -> the path of the n-th request: no two requests of a run ask the same."""
    statuses = ("", "&status=open", "&status=done")
    sorts = [sort.value for sort in TaskSort]

    def board(n: int) -> str:
        # every sort and status by turns, each at 1000 offsets (the first 20 pages): 24 000
        # different questions before one comes back
        sort, status, offset = n % len(sorts), n // len(sorts) % 3, n // (3 * len(sorts)) % 1000
        return f"/api/v1/tasks?sort={sorts[sort]}&offset={offset}{statuses[status]}"

    return {
        "/api/v1/tasks?sort=<o>&offset=<n>&status=<s>": board,
        "/api/v1/convert?...&amount=<n>": (
            lambda n: f"/api/v1/convert?from=USD&to=EUR&amount={n / 100 + 0.01:.2f}"
        ),
    }


@dataclass
class Row:
    route: str
    kind: str  # "repeated" or "uncacheable"
    result: LoadResult = field(default_factory=LoadResult)
    health: LoadResult = field(default_factory=LoadResult)
    ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")


class Bench:
    """Runs each route against one server, beside /health."""

    def __init__(self, base: str, cookie: str, connections: int, rounds: int) -> None:
        self.base = base
        self.headers = {"Cookie": cookie}
        self.connections = connections
        self.rounds = rounds

    async def check(self, path: str) -> None:
        """A route that does not answer 200 would measure its error page: stop instead."""
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers) as client:
            response = await client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text[:200]}")

    async def _load(
        self, path: str, seconds: float, maker: Callable[[], bytes] | None, connections: int
    ) -> LoadResult:
        return await run_load(
            f"{self.base}{path}",
            connections=connections,
            seconds=seconds,
            headers=self.headers,
            make_request=maker,
        )

    async def beside_health(
        self, route: str, kind: str, path: str, maker: Callable[[], bytes] | None = None
    ) -> Row:
        row = Row(f"GET {route}", kind)
        await self._load(path, WARM_UP_SECONDS, maker, WARM_UP_CONNECTIONS)
        for _ in range(self.rounds):
            health = await run_load(f"{self.base}/health", connections=self.connections, seconds=1)
            part = await self._load(path, 1, maker, self.connections)
            row.ratios.append(part.rate / health.rate if health.rate else float("nan"))
            row.health.merge(health)
            row.result.merge(part)
        return row

    def maker(self, path_of: Callable[[int], str]) -> Callable[[], bytes]:
        counter = itertools.count()

        def make() -> bytes:
            return http_request("GET", f"{self.base}{path_of(next(counter))}", self.headers)

        return make

    async def run(self, task_id: int) -> list[Row]:
        repeated = repeated_routes(task_id)
        uncacheable = uncacheable_routes()
        for path in [*repeated.values(), *(path_of(0) for path_of in uncacheable.values())]:
            await self.check(path)
        await run_load(f"{self.base}/health", connections=self.connections, seconds=1)
        rows = []
        for label, path in repeated.items():
            rows.append(await self.beside_health(label, "repeated", path))
        for label, path_of in uncacheable.items():
            row = await self.beside_health(label, "uncacheable", path_of(0), self.maker(path_of))
            rows.append(row)
        return rows


@contextlib.contextmanager
def database_url(db: str) -> Iterator[str | None]:
    """None for SQLite (the server's own file in its data dir); else a fresh PG database."""
    if db == "sqlite":
        yield None
        return
    with postgres_server() as admin_url:
        databases = Databases(admin_url)
        name = databases.create()
        try:
            yield databases.url(name)
        finally:
            databases.drop(name)


@contextlib.contextmanager
def loaded_server(db: str, tasks: int) -> Iterator[tuple[str, Loaded]]:
    """A spawned `fxdesk serve` over database `db`, the bench's data loaded before it starts."""
    loaded: list[Loaded] = []
    with database_url(db) as url:
        env = {"FXDESK_RATES_AUTOSTART": "false"}
        if url is not None:
            # A server database is shared state: fxdesk wants an explicit signing key for it.
            env |= {"FXDESK_DATABASE_URL": url, "FXDESK_SECRET_KEY": secrets.token_urlsafe(48)}

        def load(database_file: Path) -> None:
            target = url or f"sqlite+aiosqlite:///{database_file}"
            loaded.append(asyncio.run(load_all(target, USER, tasks)))

        with spawned_server([(USER, PASSWORD, "user")], extra_env=env, before_start=load) as base:
            yield base, loaded[0]


def print_table(db: str, rows: list[Row], args: argparse.Namespace) -> None:
    health = LoadResult()
    for row in rows:
        health.merge(row.health)
    print(
        f"\n{LABELS[db]}: {args.tasks} tasks, {args.connections} connections, "
        f"{args.seconds} alternating 1 s rounds per route beside GET /health, one worker"
    )
    print(f"{'route':<50} {'kind':<12} {'req/s':>7} {'p99 ms':>8} {'ratio':>6}")
    for row in rows:
        errors = f"   errors {row.result.errors}/{row.result.requests}" if row.result.errors else ""
        print(
            f"{row.route:<50} {row.kind:<12} {row.result.rate:>7.0f} "
            f"{row.result.percentile(0.99) * 1000:>8.2f} {row.ratio:>5.2f}x{errors}"
        )
    print(
        f"{'GET /health (every round above)':<50} {'':<12} {health.rate:>7.0f} "
        f"{health.percentile(0.99) * 1000:>8.2f}"
    )


def targets(db: str, rows: list[Row]) -> None:
    hot = {f"GET {LATEST}", f"GET {CONVERT}"}
    checks = [
        (f"repeated reads >= {REPEATED_TARGET}x", REPEATED_TARGET, "repeated", None),
        (f"uncacheable reads >= {UNCACHEABLE_TARGET}x", UNCACHEABLE_TARGET, "uncacheable", None),
        (f"rates/latest and convert >= {HOT_TARGET}x", HOT_TARGET, "repeated", hot),
    ]
    print(f"\ntargets on {LABELS[db]} (ratio to GET /health):")
    for name, target, kind, only in checks:
        chosen = [r for r in rows if r.kind == kind and (only is None or r.route in only)]
        below = [r for r in chosen if not r.ratio >= target]
        lowest = min(chosen, key=lambda r: r.ratio)
        if not below:
            print(f"  PASS  {name:<36} lowest: {lowest.route} {lowest.ratio:.2f}x")
            continue
        print(f"  FAIL  {name:<36} {len(below)} of {len(chosen)} below:")
        for row in below:
            print(f"          {row.route:<50} {row.ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=[*DATABASES, "both"], default="both")
    parser.add_argument("--seconds", type=int, default=5, help="1 s rounds per route")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if args.seconds < 1 or args.tasks < 3 or not 1 <= args.connections <= 256:
        parser.error("--seconds >= 1, --tasks >= 3 and 1 <= --connections <= 256")
    results: dict[str, list[Row]] = {}
    for db in DATABASES if args.db == "both" else (args.db,):
        print(f"{LABELS[db]}: loading the data and starting the server", flush=True)
        with loaded_server(db, args.tasks) as (base, loaded):
            bench = Bench(base, login_cookie(base, USER, PASSWORD), args.connections, args.seconds)
            results[db] = asyncio.run(bench.run(loaded.task_id))
        print_table(db, results[db], args)
    for db, rows in results.items():
        targets(db, rows)


if __name__ == "__main__":
    main()
