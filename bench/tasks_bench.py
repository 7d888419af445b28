"""Task board throughput and list latency with 100 000 tasks stored (SQLite).

    .venv/bin/python bench/tasks_bench.py [--tasks 100000] [--seconds 10]

Prints create and finish requests/s, and p50/p99 of a filtered, sorted page of
GET /api/v1/tasks, against a spawned server whose database was bulk-loaded first.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, http_request, run_load
from server import login_cookie, spawned_server

USER, PASSWORD = "bench-mod", "bench-password-123"


def bulk_load(count: int):
    def load(database: Path) -> None:
        started = time.perf_counter()
        with sqlite3.connect(database) as conn:
            user_id = conn.execute("SELECT id FROM users WHERE username = ?", (USER,)).fetchone()[0]
            base = datetime(2025, 1, 1, tzinfo=UTC)
            rows = []
            for i in range(count):
                at = (base + timedelta(seconds=i * 37)).isoformat(sep=" ")
                done = i % 3 == 0
                rows.append(
                    (
                        f"Seeded task {i}",
                        f"seeded task {i}",
                        f"Description of seeded task number {i}",
                        "done" if done else "open",
                        ("low", "normal", "high", "urgent")[i % 4],
                        user_id,
                        at,
                        at,
                        user_id if done else None,
                        at if done else None,
                    )
                )
            conn.executemany(
                "INSERT INTO tasks (title, title_key, description, status, priority,"
                " created_by_id, created_at, updated_at, finished_by_id, finished_at, version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                rows,
            )
            conn.execute("ANALYZE")
        print(f"bulk-loaded {count} tasks in {time.perf_counter() - started:.1f}s")

    return load


def line(name: str, result: LoadResult) -> str:
    p50, p99 = result.percentile(0.5) * 1000, result.percentile(0.99) * 1000
    return (
        f"{name:<44} {result.rate:>8.0f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"
        f"   errors {result.errors}/{result.requests}"
    )


async def measure(base: str, cookie: str, tasks: int, seconds: float) -> None:
    headers = {"Cookie": cookie}
    counter = itertools.count()

    def create() -> bytes:
        body = json.dumps({"title": f"bench task {next(counter)}"}).encode()
        return http_request("POST", f"{base}/api/v1/tasks", headers, body)

    ids = itertools.count(2)  # seeded ids 1..N; every third one is done already

    def finish() -> bytes:
        task_id = next(ids)
        while task_id % 3 == 1:  # skip tasks seeded as done (i % 3 == 0 -> id % 3 == 1)
            task_id = next(ids)
        return http_request("POST", f"{base}/api/v1/tasks/{task_id}/finish", headers)

    page = f"{base}/api/v1/tasks?status=open&sort=-created_at&limit=50&offset=100"
    search = f"{base}/api/v1/tasks?status=done&sort=title&limit=50&created_by=1"
    print(f"{tasks} tasks stored; {seconds:.0f}s per measurement; one server worker")
    latency_1 = await run_load(page, connections=1, seconds=seconds, headers=headers)
    print(line("GET list (status=open, -created_at), 1 conn", latency_1))
    latency_8 = await run_load(page, connections=8, seconds=seconds, headers=headers)
    print(line("GET list (status=open, -created_at), 8 conns", latency_8))
    other = await run_load(search, connections=1, seconds=seconds, headers=headers)
    print(line("GET list (done, by creator, title), 1 conn", other))
    created = await run_load(
        f"{base}/api/v1/tasks", connections=8, seconds=seconds, make_request=create
    )
    print(line("POST /api/v1/tasks (create), 8 conns", created))
    finished = await run_load(
        f"{base}/api/v1/tasks", connections=8, seconds=seconds, make_request=finish
    )
    print(line("POST /api/v1/tasks/{id}/finish, 8 conns", finished))
    p99 = latency_1.percentile(0.99) * 1000
    verdict = "met" if p99 < 50 else "MISSED"
    print(f"target: list p99 < 50 ms with {tasks} tasks -> {p99:.1f} ms ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with spawned_server(
        [(USER, PASSWORD, "moderator")], before_start=bulk_load(args.tasks)
    ) as base:
        cookie = login_cookie(base, USER, PASSWORD)
        asyncio.run(measure(base, cookie, args.tasks, args.seconds))


if __name__ == "__main__":
    main()
