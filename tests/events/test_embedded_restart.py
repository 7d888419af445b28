"""A single `fxdesk serve` whose embedded nats-server is killed keeps every socket live."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from tests.factories import nats_children, process_gone, until
from tests.scale import FxdeskProcess, Receiver, Writer, account, instance_env


async def test_a_killed_embedded_nats_server_is_restarted_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    env = instance_env("", [], 1)
    for name in ("FXDESK_DATABASE_URL", "FXDESK_NATS_URL", "FXDESK_NATS_STREAM_REPLICAS"):
        del env[name]  # the defaults: SQLite in the data dir and the embedded server
    instance = FxdeskProcess(0, tmp_path / "fxdesk", env)
    instance.start()
    receiver: Receiver | None = None
    writer: Writer | None = None
    try:
        await instance.wait_ready()
        assert instance.proc is not None
        [first] = nats_children(instance.proc.pid)
        receiver = Receiver("reader", await account(instance.host, "reader"))
        receiver.follow([instance.host])
        await asyncio.wait_for(receiver.subscribed.wait(), 20)
        writer = Writer("writer", await account(instance.host, "writer"), 5)
        writer.run([instance.host], set())

        await asyncio.sleep(2)
        os.kill(first, signal.SIGKILL)
        await until(lambda: process_gone(first), 10, "the killed server gone")
        await asyncio.sleep(4)  # writes go on while the server is away and comes back
        await writer.stop()
        written = {w.task_id for w in writer.done}

        def delivered() -> bool:
            assert receiver is not None
            return written <= {e.task_id for e in receiver.events}

        await until(delivered, 10, "every 2xx write delivered after the restart")
        await asyncio.sleep(1)  # anything delivered twice would arrive now

        assert writer.failed == []  # the outage did not turn a write away
        assert len(written) >= 20
        seqs = [e.seq for e in receiver.events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        task_ids = [e.task_id for e in receiver.events]
        assert len(task_ids) == len(set(task_ids))
        assert receiver.resumes == 0  # the same socket carried on; nothing had to resume
        [second] = nats_children(instance.proc.pid)
        assert second != first
    finally:
        if writer is not None:
            await writer.stop()
        if receiver is not None:
            await receiver.stop()
        instance.stop()
