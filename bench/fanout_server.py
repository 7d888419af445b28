"""The server side of bench/fanout.py: fxdesk plus a bench emit route, run as its own process."""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from collections import deque
from typing import Any

import uvicorn
from fanout_process import raise_fd_limit
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from fxdesk.app import create_app
from fxdesk.auth.dependencies import CurrentUser
from fxdesk.config import Settings
from fxdesk.db import DbSession
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import EventType
from fxdesk.logging import configure_logging
from fxdesk.realtime import hub as hub_module
from fxdesk.serving import SERVER_OPTIONS

LAG_TICK = 0.01  # the loop-lag probe asks to wake every 10 ms and records how late it was
LAG_SAMPLES = 100_000
SEEN_LIMIT = 100_000

bench_router = APIRouter(prefix="/api/v1/bench")


class EmitIn(BaseModel):
    text: str = Field(default="bench", min_length=1, max_length=2000)


@bench_router.post("/emit")
async def emit(body: EmitIn, user: CurrentUser, session: DbSession) -> dict[str, Any]:
    """One chat_message event, written to the outbox in this request's transaction."""
    row = await add_event(session, EventType.chat_message, {"text": body.text}, actor=user)
    return {"seq": row.id}


# ----------------------------------------------------------------- instrumentation (read-only)
# Observes the server without changing what it does: when the hub takes each event off the
# stream, and how late a 10 ms timer fires (how long the event loop was busy elsewhere).

hub_seen: dict[int, tuple[float, float]] = {}  # seq -> (hub received, all clients queued)
loop_lag: deque[float] = deque(maxlen=LAG_SAMPLES)
gc_pauses: deque[tuple[int, float]] = deque(maxlen=LAG_SAMPLES)  # (generation, seconds)
_lag_task: asyncio.Task[None] | None = None
_gc_started = 0.0


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        gc_pauses.append((int(info["generation"]), time.perf_counter() - _gc_started))


def instrument_hub() -> bool:
    original = getattr(hub_module.Hub, "publish_local", None)
    if original is None:
        return False

    def publish_local(self: Any, seq: int, channel: Any, text: str) -> None:
        received = time.time()
        original(self, seq, channel, text)
        if len(hub_seen) < SEEN_LIMIT:
            hub_seen[seq] = (received, time.time())

    hub_module.Hub.publish_local = publish_local  # type: ignore[method-assign]
    return True


async def _probe_loop_lag() -> None:
    loop = asyncio.get_running_loop()
    for _ in range(10_000_000):  # ~28 h at 10 ms: bounded, and longer than any run
        expected = loop.time() + LAG_TICK
        await asyncio.sleep(LAG_TICK)
        loop_lag.append(max(0.0, loop.time() - expected))


@bench_router.post("/stats/reset")
async def stats_reset(collect: bool = True) -> dict[str, Any]:
    """Start the probes (first call) and forget what they saw; returns the heap's size and,
    with `collect`, how long a full collection of it takes."""
    global _lag_task
    if _lag_task is None:
        _lag_task = asyncio.create_task(_probe_loop_lag(), name="bench-loop-lag")
    full_collection_ms: float | None = None  # JSON has no NaN
    if collect:
        started = time.perf_counter()
        gc.collect()
        full_collection_ms = (time.perf_counter() - started) * 1000
    hub_seen.clear()
    loop_lag.clear()
    gc_pauses.clear()
    return {
        "objects": len(gc.get_objects()),
        "frozen": gc.get_freeze_count(),
        "threshold": gc.get_threshold(),
        "full_collection_ms": full_collection_ms,
    }


@bench_router.get("/stats")
async def stats() -> dict[str, Any]:
    return {
        "hub": {str(seq): times for seq, times in hub_seen.items()},
        "loop_lag": list(loop_lag),
        "gc": list(gc_pauses),
    }


_mem_baseline: tracemalloc.Snapshot | None = None


@bench_router.post("/mem/baseline")
async def mem_baseline() -> dict[str, Any]:
    """With --tracemalloc: remember the heap now, for /mem/diff."""
    global _mem_baseline
    if not tracemalloc.is_tracing():
        return {"tracing": False}
    gc.collect()
    _mem_baseline = tracemalloc.take_snapshot()
    return {"tracing": True}


def _by_owner(snapshot: tracemalloc.Snapshot) -> dict[str, int]:
    """Bytes per owner; reads the snapshot's raw trace tuples (Trace objects are too slow)."""
    raw: list[tuple[Any, ...]] = getattr(snapshot.traces, "_traces", [])
    owner_of: dict[Any, str] = {}
    sizes: dict[str, int] = {}
    for trace in raw:
        size, frames = trace[1], trace[2]  # (domain, size, ((file, line), ...), nframes)
        owner = owner_of.get(frames)
        if owner is None:
            owner = "?"
            for filename, lineno in frames:  # raw order: most recent first
                stdlib = "/lib/python3" in filename and "site-packages" not in filename
                if not stdlib and filename != "<string>":
                    owner = f"{filename}:{lineno}"
                    break
            owner_of[frames] = owner
        sizes[owner] = sizes.get(owner, 0) + size
    return sizes


@bench_router.get("/mem/diff")
async def mem_diff(limit: int = 25, per: int = 1) -> dict[str, Any]:
    """With --tracemalloc: the allocation sites that grew most since /mem/baseline, per `per`."""
    if _mem_baseline is None:
        return {"tracing": tracemalloc.is_tracing(), "sites": []}
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = snapshot.filter_traces(ignore).compare_to(_mem_baseline.filter_traces(ignore), "lineno")
    total = sum(stat.size_diff for stat in diff)
    sites = [
        {
            "site": f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}",
            "kb_each": stat.size_diff / 1024 / max(per, 1),
            "blocks_each": stat.count_diff / max(per, 1),
        }
        for stat in sorted(diff, key=lambda stat: stat.size_diff, reverse=True)[:limit]
    ]
    # Owner: the innermost frame outside the standard library (who asked for the deque, task,
    # dict...), summed per file:line; more telling than the allocating line itself.
    owners = _by_owner(snapshot)
    for key, size in _by_owner(_mem_baseline).items():
        owners[key] = owners.get(key, 0) - size
    files = [
        {"site": site, "kb_each": size / 1024 / max(per, 1)}
        for site, size in sorted(owners.items(), key=lambda item: item[1], reverse=True)[:limit]
    ]
    packages: dict[str, int] = {}
    for site, size in owners.items():
        package = site.split("site-packages/", 1)[-1].split("/src/", 1)[-1].split("/", 1)[0]
        packages[package] = packages.get(package, 0) + size
    per_package = {
        package: size / 1024 / max(per, 1)
        for package, size in sorted(packages.items(), key=lambda item: item[1], reverse=True)
        if abs(size) / max(per, 1) >= 64
    }
    return {
        "tracing": True,
        "kb_each": total / 1024 / max(per, 1),
        "sites": sites,
        "files": files,
        "packages": per_package,
    }


def build_app(settings: Settings) -> FastAPI:
    app = create_app(settings)  # migrates in its lifespan, starts Broker, Hub and OutboxRelay
    app.include_router(bench_router)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tracemalloc", action="store_true", help="for /api/v1/bench/mem/*")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start(16)  # deep enough to find who asked for each allocation

    raise_fd_limit()
    instrument_hub()
    gc.callbacks.append(_on_gc)
    settings = Settings()  # FXDESK_DATA_DIR, FXDESK_LOG_LEVEL, ... come from the environment
    configure_logging(settings)
    uvicorn.run(build_app(settings), host="127.0.0.1", port=args.port, **SERVER_OPTIONS)


if __name__ == "__main__":
    main()
