"""The fan-out benchmark's report: what a run measured, against the targets."""

from __future__ import annotations

import argparse
import os
from typing import Any

from fanout_clients import CONNECT_CONCURRENCY
from fanout_phases import HEALTH_PROBES, HOLD_SECONDS, FanoutResult, IdleResult, Measured
from fanout_process import Server, log_summary
from loadgen import percentile

TARGET_CLIENTS = 1000
TARGET_RATE = 10.0
TARGET_P99_MS = 100.0
TARGET_IDLE = 10_000
TARGET_IDLE_KB = 40.0
RULE = "-" * 78


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


def gc_summary(pauses: list[tuple[int, float]]) -> str:
    if not pauses:
        return "no collection during the run"
    parts = []
    for gen in (0, 1, 2):
        times = [sec for g, sec in pauses if g == gen]
        if times:
            parts.append(f"gen{gen} {len(times)}x max {max(times) * 1000:.1f} ms")
    return ", ".join(parts) + f"; total {sum(sec for _, sec in pauses) * 1000:.0f} ms"


def spread(values: list[float], unit: float = 1000.0) -> str:
    """`p50 .. p99 .. max` of `values` (seconds by default), in ms."""
    if not values:
        return "n/a"
    return (
        f"p50 {percentile(values, 0.5) * unit:.1f}  p99 {percentile(values, 0.99) * unit:.1f}  "
        f"max {max(values) * unit:.1f} ms"
    )


def shorten_path(site: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in site:
            return site.split(marker, 1)[1]
    return site


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def report(args: argparse.Namespace, server: Server, run: Measured) -> list[str]:
    n = len(run.connected.clients)
    lines = ["=" * 78, *header(args, server, run), RULE, *connect_lines(args, run)]
    if run.fan is not None:
        lines += fanout_lines(run.fan, n)
    if run.idle is not None:
        lines += idle_lines(args, run.idle, n)
        lines += memory_lines(run.idle.mem_sites)
    lines.append(f"server log         {log_summary(server.log_file)}")
    lines += [RULE, "targets", *target_lines(args, run), "=" * 78]
    return lines


def header(args: argparse.Namespace, server: Server, run: Measured) -> list[str]:
    lines = [
        "fxdesk fan-out benchmark  (HTTP POST -> outbox -> relay -> JetStream -> hub -> WS)",
        f"cpus={os.cpu_count()}  load avg at start {run.load_at_start}  "
        f"server pid={server.pid} (own process, uvicorn: uvloop, httptools, websockets-sansio)",
        f"source             {run.source} (src/ as the server imported it)",
    ]
    if args.mem_profile:
        lines.append("DIAGNOSTIC RUN: server under tracemalloc (slower, RSS inflated)")
    return lines


def connect_lines(args: argparse.Namespace, run: Measured) -> list[str]:
    connected = run.connected
    n = len(connected.clients)
    per_client_kb = (run.rss_after - run.rss_before) / n if n else float("nan")
    return [
        f"connect            {n}/{args.clients} clients in {connected.seconds:.2f} s",
        f"  rate             {connected.rate:.0f} connections/s (handshake + hello + subscribe)",
        f"  server heap      before connecting: {heap_line(run.heap_at_start)}",
        f"  server RSS       {run.rss_before / 1024:.1f} MB -> {run.rss_after / 1024:.1f} MB  = "
        f"{per_client_kb:.1f} KB per connection",
    ]


def fanout_lines(fan: FanoutResult, n: int) -> list[str]:
    em = fan.emission
    frames_wanted = len(em.seqs) * n
    return [
        f"fan-out            {len(em.seqs)} events posted in {em.seconds:.2f} s "
        f"({len(em.seqs) / em.seconds if em.seconds else 0:.1f}/s, paced loop at worst "
        f"{em.worst_late * 1000:.0f} ms late), {em.errors} POST errors",
        f"  POST latency     {spread(em.post_latencies)}",
        f"  end-to-end       {spread(fan.latencies)}  ({len(fan.latencies)} frames)",
        f"    ts -> hub      {spread(fan.to_hub)}  (commit, relay, JetStream)",
        f"    hub queueing   {spread(fan.hub_queue)}  (offer to every client)",
        f"    hub -> client  {spread(fan.hub_to_client)}  (pumps, sockets, client)",
        f"    first -> last  {spread(fan.fanout_span)}  (per event, across clients)",
        f"  server loop lag  {spread(fan.loop_lag)}  (a 10 ms timer, how late)",
        f"  server GC        {gc_summary(fan.gc_pauses)}",
        f"  server heap      {heap_line(fan.heap)}",
        f"  client loop lag  {spread(fan.client_lag)}",
        f"  delivered        {fan.delivered}/{frames_wanted} frames in "
        f"{fan.delivery_seconds:.2f} s = "
        f"{fan.delivered / fan.delivery_seconds if fan.delivery_seconds else 0:.0f} events/s",
        f"  exactly once     {fan.complete_clients}/{n} clients got every event once, in "
        f"order; missing {fan.missing}, duplicates {fan.duplicates}, "
        f"out of order {fan.out_of_order}, unexpected {fan.unexpected}",
        f"  CPU              server {fan.server_cpu / fan.wall * 100:.0f}% of a core, "
        f"this client {fan.client_cpu / fan.wall * 100:.0f}% (over {fan.wall:.1f} s); "
        f"server {fan.server_cpu / max(fan.delivered, 1) * 1e6:.0f} us per frame delivered",
        f"  CPU contention   server loop thread waited {fan.server_wait:.2f} s for a CPU, "
        f"this client {fan.client_wait:.2f} s",
    ]


def idle_kb(idle: IdleResult) -> float:
    """Server RSS per idle connection, in KB."""
    m = len(idle.connected.clients)
    return (idle.rss[1] - idle.rss[0]) / m if m else float("nan")


def idle_lines(args: argparse.Namespace, idle: IdleResult, n: int) -> list[str]:
    m = len(idle.connected.clients)
    ok, health_lat = idle.health
    return [
        f"idle               {m}/{args.idle} opened in {idle.connected.seconds:.2f} s "
        f"({idle.connected.rate:.0f}/s, {CONNECT_CONCURRENCY} at a time), "
        f"{idle.connected.failures} failed",
        f"  server RSS       {idle.rss[0] / 1024:.1f} MB -> {idle.rss[1] / 1024:.1f} MB  = "
        f"{idle_kb(idle):.1f} KB per connection (the {n} fan-out clients stay open)",
        f"  after full GC    {idle.rss_after_gc / 1024:.1f} MB = "
        f"{(idle.rss_after_gc - idle.rss[0]) / m if m else float('nan'):.1f} KB per connection "
        "(cyclic garbage collected; RSS rarely shrinks)",
        f"  GET /health      {ok}/{HEALTH_PROBES} OK while held, "
        f"p50 {percentile(health_lat, 0.5) * 1000:.1f} ms  "
        f"max {max(health_lat, default=float('nan')) * 1000:.1f} ms",
        f"  still open       {idle.open_after_hold}/{m} after {HOLD_SECONDS:g} s",
        f"  server heap      {heap_line(idle.heap)}",
    ]


def memory_lines(mem_sites: dict[str, Any]) -> list[str]:
    """What --mem-profile found each idle connection allocates (nothing without it)."""
    if not mem_sites.get("sites"):
        return []
    lines = [
        f"tracemalloc        {mem_sites['kb_each']:.1f} KB of Python heap per idle "
        "connection (--mem-profile: RSS figures above include tracemalloc's own overhead)",
        "  allocation sites (line that allocated):",
    ]
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
    return lines


def target_lines(args: argparse.Namespace, run: Measured) -> list[str]:
    lines = []
    n = len(run.connected.clients)
    fan = run.fan
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
    idle = run.idle
    if idle is not None:
        m = len(idle.connected.clients)
        health = idle.health
        ok = (
            m >= TARGET_IDLE
            and idle_kb(idle) < TARGET_IDLE_KB
            and health[0] == HEALTH_PROBES
            and idle.open_after_hold == m
        )
        lines.append(
            f"  {TARGET_IDLE} idle connections < {TARGET_IDLE_KB:g} KB each, /health answers:  "
            f"{m} held, {idle_kb(idle):.1f} KB each, /health {health[0]}/{HEALTH_PROBES}  "
            f"{verdict(ok)}"
        )
    else:
        lines.append("  idle connections:  skipped (--idle 0)")
    return lines
