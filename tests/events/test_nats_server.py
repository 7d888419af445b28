"""The embedded nats-server: JetStream works, data persists, and the server dies with its parent."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import nats
import pytest

from fxdesk.events.nats_process import (
    NatsServerError,
    NatsServerNotFoundError,
    find_nats_server,
)
from fxdesk.events.nats_server import EmbeddedNats
from tests.factories import process_gone, wait_for, wait_gone

HELPER = textwrap.dedent(
    """
    import asyncio
    import sys
    from pathlib import Path

    import structlog

    from fxdesk.events.nats_server import EmbeddedNats

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


    async def main() -> None:
        server = EmbeddedNats(Path(sys.argv[1]))
        await server.start()
        print(f"PID {server.pid}", flush=True)
        await asyncio.sleep(60)


    asyncio.run(main())
    """
)


def write_file(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


async def test_start_serves_jetstream_on_loopback_and_stop_ends_it(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    await server.start()
    pid = server.pid
    assert pid is not None
    try:
        assert server.url.startswith("nats://127.0.0.1:")
        client = await nats.connect(server.url)
        try:
            js = client.jetstream()
            await js.add_stream(name="SMOKE", subjects=["smoke.>"])
            ack = await js.publish("smoke.one", b"hello")
            message = await js.get_msg("SMOKE", ack.seq)
            assert message.data == b"hello"
        finally:
            await client.close()
    finally:
        await server.stop()

    assert process_gone(pid)
    assert not server.running
    await server.stop()  # idempotent
    with pytest.raises(NatsServerError, match="not running"):
        _ = server.url


async def test_stream_survives_restart_on_same_store_dir(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    async with EmbeddedNats(store) as server:
        client = await nats.connect(server.url)
        js = client.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"])
        await js.publish("keep.it", b"still here")
        await client.close()

    async with EmbeddedNats(store) as server:
        client = await nats.connect(server.url)
        js = client.jetstream()
        info = await js.stream_info("KEEP")
        assert info.state.messages == 1
        message = await js.get_msg("KEEP", 1)
        assert message.data == b"still here"
        await client.close()


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
async def test_sigkill_of_parent_takes_the_server_down(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    script = write_file(tmp_path / "helper.py", HELPER)
    with (tmp_path / "helper.log").open("wb") as helper_log:
        helper = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            str(store),
            stdout=asyncio.subprocess.PIPE,
            stderr=helper_log,
        )
    assert helper.stdout is not None
    try:
        line = await asyncio.wait_for(helper.stdout.readline(), 15)
        assert line.startswith(b"PID "), (line, (tmp_path / "helper.log").read_text())
        server_pid = int(line.split()[1])
        assert not process_gone(server_pid)
        ports_file = store / f"nats-server_{server_pid}.ports"
        assert ports_file.exists()
    finally:
        helper.kill()
        await helper.wait()

    assert await wait_gone(server_pid), f"nats-server {server_pid} outlived its SIGKILLed parent"
    # Only a graceful shutdown removes the ports file: the server got SIGTERM and was not
    # cut short by SIGPIPE on its orphaned stderr.
    assert not ports_file.exists()

    # What a crash leaves behind (lock file, a stale ports file) must not block the next start.
    write_file(store / "nats-server_999999.ports", '{"nats":["nats://127.0.0.1:1"]}')
    async with EmbeddedNats(store) as server:
        assert server.url != "nats://127.0.0.1:1"
    assert not (store / "nats-server_999999.ports").exists()


async def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats", binary=tmp_path / "no-such-nats-server")
    with pytest.raises(NatsServerNotFoundError, match="no-such-nats-server"):
        await server.start()
    assert not server.running


def test_binary_is_found_beside_the_interpreter() -> None:
    assert find_nats_server() == Path(sys.executable).parent / "nats-server"


async def test_early_exit_reports_the_servers_stderr(tmp_path: Path) -> None:
    fake = write_file(
        tmp_path / "nats-server",
        "#!/bin/sh\necho '[1] [FTL] simulated failure: disk on fire' >&2\nexit 3\n",
        0o755,
    )
    server = EmbeddedNats(tmp_path / "nats", binary=fake)
    with pytest.raises(NatsServerError, match=r"(?s)exited with code 3.*disk on fire"):
        await server.start()
    assert not server.running


async def test_second_server_on_same_store_dir_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    async with EmbeddedNats(store):
        with pytest.raises(NatsServerError, match="in use"):
            await EmbeddedNats(store, start_timeout=0.3).start()


async def test_jetstream_that_never_answers_times_out_with_stderr(tmp_path: Path) -> None:
    # Writes a ports file like the real server, but nothing listens on the port it names.
    fake = write_file(
        tmp_path / "nats-server",
        textwrap.dedent(
            """\
            #!/bin/sh
            while [ $# -gt 0 ]; do [ "$1" = --ports_file_dir ] && dir=$2; shift; done
            echo '{"nats":["nats://127.0.0.1:1"]}' > "$dir/nats-server_$$.ports"
            echo '[1] [INF] pretending to be ready' >&2
            exec sleep 30
            """
        ),
        0o755,
    )
    server = EmbeddedNats(tmp_path / "nats", binary=fake, start_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(NatsServerError, match=r"(?s)did not answer within.*pretending"):
        await server.start()
    assert time.monotonic() - started < 3
    assert not server.running


async def test_killed_server_is_restarted_on_same_port_and_store(tmp_path: Path) -> None:
    async with EmbeddedNats(tmp_path / "nats", log_level="WARNING") as server:
        url, first_pid = server.url, server.pid
        assert first_pid is not None
        reconnected = asyncio.Event()

        async def on_reconnected() -> None:
            reconnected.set()

        client = await nats.connect(
            url,
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
            reconnected_cb=on_reconnected,
        )
        try:
            js = client.jetstream()
            await js.add_stream(name="KEEP", subjects=["keep.>"])
            await js.publish("keep.before", b"before the kill")

            os.kill(first_pid, signal.SIGKILL)
            assert await wait_gone(first_pid)
            await asyncio.wait_for(reconnected.wait(), 10)

            assert server.running and server.pid != first_pid
            assert server.url == url  # the same port: clients find it where they left it
            assert server.restarts == 1
            info = await js.stream_info("KEEP")
            assert info.state.messages == 1
            assert (await js.get_msg("KEEP", 1)).data == b"before the kill"
            ack = await js.publish("keep.after", b"after the restart")
            assert ack.seq == 2
        finally:
            await client.close()
        second_pid = server.pid
        assert second_pid is not None
    assert process_gone(second_pid)
    assert not server.running


async def test_a_failing_restart_is_retried_until_it_succeeds(tmp_path: Path) -> None:
    # The real server the first time; then it refuses to start until `allow` exists.
    runs, allow = tmp_path / "runs", tmp_path / "allow"
    wrapper = write_file(
        tmp_path / "nats-server",
        textwrap.dedent(
            f"""\
            #!/bin/sh
            echo run >> {runs}
            if [ "$(wc -l < {runs})" -gt 1 ] && [ ! -e {allow} ]; then
                echo '[1] [FTL] simulated failure: disk on fire' >&2
                exit 3
            fi
            exec {find_nats_server()} "$@"
            """
        ),
        0o755,
    )
    async with EmbeddedNats(tmp_path / "nats", binary=wrapper, log_level="WARNING") as server:
        url, first_pid = server.url, server.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)

        def failed_restarts() -> int:
            return len(runs.read_text().splitlines()) - 1

        assert await wait_for(lambda: failed_restarts() >= 3, 10)
        # A failing attempt's process may be alive for a moment; none has come up serving.
        assert server.restarts == 0
        with pytest.raises(Exception):  # noqa: B017 - refused or timed out, either way
            await asyncio.wait_for(nats.connect(url, allow_reconnect=False), 2)
        allow.touch()
        assert await wait_for(lambda: server.restarts == 1, 15)
        assert server.running and server.url == url
        client = await nats.connect(url)
        await client.jetstream().account_info()
        await client.close()


async def test_stop_ends_supervision_even_in_the_middle_of_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    for pause in (0.0, 0.15, 0.3, 0.6):
        server = EmbeddedNats(store, log_level="WARNING")
        await server.start()
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(pause)
        await server.stop()
        assert not server.running
        # Nothing restarted behind our back: any server would hold the store's lock.
        await asyncio.sleep(0.5)
        async with EmbeddedNats(store, start_timeout=2, log_level="WARNING") as successor:
            assert successor.running


async def test_ready_holds_503_for_a_moment_after_an_outage_however_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failover may last milliseconds: /ready still shows it, for RECOVERY_HOLD_SECONDS."""
    from fxdesk.events import consumer as consumer_module

    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])  # the time module the consumer reads
    events = consumer_module.EventConsumer(broker=None)  # type: ignore[arg-type]
    events._set_problem(None)  # the start: no outage to report
    assert events.readiness() is None
    events._set_problem("reconnected to NATS: re-creating the stream consumer")
    assert events.readiness() == "reconnected to NATS: re-creating the stream consumer"
    clock[0] += 0.001
    events._set_problem(None)
    assert events.readiness() == (
        "recovering from: reconnected to NATS: re-creating the stream consumer"
    )
    clock[0] += consumer_module.RECOVERY_HOLD_SECONDS
    assert events.readiness() is None
