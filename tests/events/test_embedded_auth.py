"""The embedded nats-server admits only fxdesk: a password generated once into the data dir."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest

from fxdesk.events.broker import Broker
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.events.nats_store import EMBEDDED_USER
from fxdesk.events.schemas import SUBJECTS, Channel
from tests.factories import make_settings, quiet, wait_for, wait_gone


async def _refused(url: str, **options: str) -> None:
    """Connecting with `options` (none: anonymous) is refused by the server's authorization."""
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        client = await nats.connect(
            url, allow_reconnect=False, connect_timeout=2, error_cb=quiet, **options
        )
        await client.close()  # not reached when refused


async def _works(url: str, password: str) -> None:
    client = await nats.connect(url, user=EMBEDDED_USER, password=password, allow_reconnect=False)
    try:
        await client.jetstream(timeout=5).account_info()
    finally:
        await client.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Files are created as if nobody restricted the umask: 0600 must come from us alone."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
async def test_only_the_generated_password_gets_in(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    async with EmbeddedNats(store, auth=True, log_level="WARNING") as server:
        password_file = store / "password"
        password = password_file.read_text().strip()
        assert len(password) >= 32
        assert _mode(password_file) == 0o600
        assert _mode(store / "server.conf") == 0o600
        assert server.connect_options == {"user": EMBEDDED_USER, "password": password}

        await _refused(server.url)
        await _refused(server.url, user=EMBEDDED_USER, password=password + "x")
        await _refused(server.url, token=password)
        await _works(server.url, password)

    # Generated once: the next start keeps it (operators' clients keep working).
    async with EmbeddedNats(store, auth=True, log_level="WARNING") as server:
        assert password_file.read_text().strip() == password
        await _refused(server.url)
        await _works(server.url, password)


async def test_a_supervised_restart_keeps_requiring_the_password(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    async with EmbeddedNats(store, auth=True, log_level="WARNING") as server:
        password = (store / "password").read_text().strip()
        (store / "server.conf").unlink()  # even a lost config comes back with the restart
        first_pid = server.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        assert await wait_gone(first_pid)
        assert await wait_for(lambda: server.restarts == 1, 15)

        await _refused(server.url)
        await _works(server.url, password)
        assert (store / "password").read_text().strip() == password


async def test_a_readable_password_file_is_made_private_and_kept(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    store.mkdir()
    (store / "password").write_text("operator-chosen-password_0123456789\n")
    (store / "password").chmod(0o644)
    async with EmbeddedNats(store, auth=True, log_level="WARNING") as server:
        assert _mode(store / "password") == 0o600
        await _refused(server.url)
        await _works(server.url, "operator-chosen-password_0123456789")


async def test_without_auth_anyone_local_may_connect(tmp_path: Path) -> None:
    # What the test fixtures use; the broker never does (below).
    async with EmbeddedNats(tmp_path / "nats", log_level="WARNING") as server:
        assert server.connect_options == {}
        client = await nats.connect(server.url, allow_reconnect=False)
        await client.close()
    assert not (tmp_path / "nats" / "password").exists()


async def test_a_forged_chat_event_cannot_reach_fxdesks_embedded_server(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tmp_path / "fxdesk.db", nats_url=None)
    broker = Broker(settings)
    await broker.start()
    try:
        assert broker.embedded is not None
        url = broker.embedded.url
        subject = SUBJECTS[Channel.chat]

        # An anonymous local process: its connection is refused, so it cannot publish at all.
        forged = b'{"type": "chat_message", "data": {"author": "admin", "text": "forged"}}'
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            intruder = await nats.connect(
                url, allow_reconnect=False, connect_timeout=2, error_cb=quiet
            )
            await intruder.publish(subject, forged)
            await intruder.flush()
            await intruder.close()

        # fxdesk itself is connected with the credentials from the data dir, and so is an
        # operator's client that reads them there.
        assert broker.connected
        password = (tmp_path / "nats" / "password").read_text().strip()
        operator = await nats.connect(url, user=EMBEDDED_USER, password=password)
        try:
            info = await operator.jetstream(timeout=5).stream_info(settings.nats_stream)
            assert info.state.messages == 0  # nothing forged landed in the stream
            ack = await operator.jetstream(timeout=5).publish(subject, b"{}")
            assert ack.stream == settings.nats_stream
        finally:
            await operator.close()
    finally:
        await broker.stop()
