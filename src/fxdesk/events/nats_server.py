"""Runs a private nats-server with JetStream as a child process that cannot outlive the app,
and restarts it on the same port and store whenever it dies.

The store directory's files are in nats_store, the binary lookup and process helpers in
nats_process, and the server's stderr forwarding in nats_log."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import nats.errors

from fxdesk.events.nats_log import _SERVER_VERBOSITY, ServerStderr
from fxdesk.events.nats_process import (
    NatsServerError,
    _probe_jetstream,
    find_nats_server,
    server_args,
    spawn_server,
    terminate,
)
from fxdesk.events.nats_store import (
    EMBEDDED_USER,
    _read_ports_file,
    _remove_ports_files,
    acquire_store_lock,
    load_or_create_password,
    write_server_config,
)
from fxdesk.logging import get_logger
from fxdesk.ops.metrics import NATS_RESTARTS
from fxdesk.tasking import stop_task

log = get_logger("fxdesk.events.nats_server")

DEFAULT_SERVER_NAME = "fxdesk-embedded"
# Seconds before a restart attempt: doubled after each one, back to the first after a server
# that stayed up for a while, so a server that keeps crashing is not respawned in a tight loop.
RESTART_DELAY_FIRST = 0.1
RESTART_DELAY_MAX = 5.0
RESTART_STABLE_SECONDS = 30.0


class EmbeddedNats:
    """One nats-server bound to 127.0.0.1 on a free port, JetStream stored under `store_dir`.

    Between `start()` and `stop()` the server is supervised: if it dies (a crash, the OOM
    killer, a stray SIGKILL) it is started again on the same port and the same store, so
    the stream survives and clients reconnect to the URL they know. `restarts` counts that.

    Call `start()` from the thread that runs the event loop and keeps running for the app's
    lifetime (normally the main thread); restarts run on that loop too. On Linux the server is
    told to exit when its parent dies via PR_SET_PDEATHSIG, and the kernel ties that to the
    *thread* that forked it, not the process: start it from a short-lived worker thread and the
    server is SIGTERMed as soon as that thread ends.

    With `auth` the server admits only user EMBEDDED_USER with the password kept in
    `store_dir/password` (generated on the first start, mode 0600, kept across restarts);
    `connect_options` gives what nats.connect needs. Without it anyone on the host may connect,
    which only tests and throwaway servers want.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        log_level: str = "INFO",
        binary: Path | None = None,
        server_name: str = DEFAULT_SERVER_NAME,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        port: int | None = None,
        auth: bool = False,
    ) -> None:
        level = log_level.upper()
        if level not in _SERVER_VERBOSITY:
            raise ValueError(f"unknown log level {log_level!r}")
        self.store_dir = store_dir
        self.log_level = level
        self.server_name = server_name
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        # None: the server picks a free port; a fixed one lets clients reconnect after a restart.
        self.port = port
        self.auth = auth
        self.restarts = 0
        self._password: str | None = None
        self._binary = binary
        self._proc: asyncio.subprocess.Process | None = None
        self._url: str | None = None
        self._ready = False
        self._up_since = 0.0
        self._supervisor: asyncio.Task[None] | None = None
        self._lock_fd: int | None = None
        self._stderr = ServerStderr()

    @property
    def url(self) -> str:
        """The client URL, e.g. nats://127.0.0.1:43123; only while started (it stays the same
        across restarts)."""
        if self._url is None:
            raise NatsServerError("the embedded nats-server is not running")
        return self._url

    @property
    def connect_options(self) -> dict[str, str]:
        """Keyword arguments for nats.connect: the user and password when auth is on (only
        once started), else none."""
        if not self.auth:
            return {}
        if self._password is None:
            raise NatsServerError("the embedded nats-server is not started")
        return {"user": EMBEDDED_USER, "password": self._password}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server and return once JetStream answers, or raise NatsServerError."""
        if self._proc is not None:
            raise NatsServerError("the embedded nats-server is already started")
        binary = find_nats_server(self._binary)
        store_dir = self.store_dir.resolve()
        store_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        deadline = started + self.start_timeout
        try:
            self._lock_fd = await acquire_store_lock(store_dir, deadline)
            if self.auth:
                # Under the lock: two starts on one store dir never make two passwords.
                self._password = await asyncio.to_thread(load_or_create_password, store_dir)
            url = await self._launch(binary, store_dir, self.port, deadline)
        except BaseException:
            await self.stop()
            raise
        self._url = url
        log.info(
            "nats_started",
            url=url,
            pid=self.pid,
            store_dir=str(store_dir),
            seconds=round(time.monotonic() - started, 3),
        )
        # Restarts bind the port this server got, even when it was picked at random.
        port = urlsplit(url).port
        self._supervisor = asyncio.create_task(
            self._supervise(binary, store_dir, port), name="nats-supervisor"
        )

    async def stop(self) -> None:
        """Stop supervising, then SIGTERM the server (it shuts JetStream down cleanly), SIGKILL
        it if it hangs."""
        supervisor, self._supervisor = self._supervisor, None
        try:
            if supervisor is not None:
                # First, so that the server we are about to stop is not started again.
                await stop_task(supervisor)
            await self._end_process()
        finally:
            self._release_lock()
            self._url = None
            self._password = None

    async def _launch(
        self, binary: Path, store_dir: Path, port: int | None, deadline: float
    ) -> str:
        """Spawn the server on `port` (None: a free one); its URL once JetStream answers.

        The caller holds the store's lock; the server gets a copy of it.
        """
        # Left behind when a previous server was SIGKILLed; we hold the lock, so none is ours.
        await asyncio.to_thread(_remove_ports_files, store_dir)
        config: Path | None = None
        if self._password is not None:
            # Written again for every start and restart, so a restarted server requires the
            # same password even if someone deleted or edited the file meanwhile.
            config = await asyncio.to_thread(write_server_config, store_dir, self._password)
        await self._spawn(binary, store_dir, port, config)
        url = await self._wait_for_ports_file(binary, store_dir, deadline)
        await self._wait_for_jetstream(url, deadline)
        self._ready = True
        self._up_since = time.monotonic()
        return url

    async def _end_process(self) -> None:
        """Stop the current server process, if any, and its stderr reader; the lock stays."""
        proc = self._proc
        try:
            if proc is not None:
                await terminate(proc, self.stop_timeout, exit_unexpected=self._ready)
        finally:
            await self._stderr.close(self._proc)
            self._proc = None
            self._ready = False

    async def _supervise(self, binary: Path, store_dir: Path, port: int | None) -> None:
        """Wait for the server to die, start it again on the same port and store; forever."""
        delay = RESTART_DELAY_FIRST
        while True:
            proc = self._proc
            assert proc is not None
            await proc.wait()
            if time.monotonic() - self._up_since >= RESTART_STABLE_SECONDS:
                delay = RESTART_DELAY_FIRST
            await self._end_process()  # logs the unexpected exit
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)
                try:
                    # No new lock: we still hold ours, and would only wait for ourselves.
                    url = await self._launch(
                        binary, store_dir, port, time.monotonic() + self.start_timeout
                    )
                    break
                except Exception as error:  # e.g. the port was taken meanwhile: try again
                    log.warning(
                        "nats_restart_failed", error=str(error).splitlines()[0], retry_in=delay
                    )
                    await self._end_process()
            self._url = url
            self.restarts += 1
            NATS_RESTARTS.inc()
            log.warning("nats_restarted", url=url, pid=self.pid, restarts=self.restarts)

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _spawn(
        self, binary: Path, store_dir: Path, port: int | None, config: Path | None
    ) -> None:
        assert self._lock_fd is not None
        args = server_args(store_dir, port, config, self.server_name, self.log_level)
        self._proc, read_fd = await spawn_server(binary, args, self._lock_fd)
        await self._stderr.start(read_fd)
        log.debug("nats_spawned", pid=self._proc.pid, binary=str(binary), args=args)

    async def _fail(self, message: str) -> NatsServerError:
        proc = self._proc
        if proc is not None and proc.returncode is not None:
            # The server has exited; let the reader take in its last words before we quote them.
            await self._stderr.drain()
        return NatsServerError(f"{message}\n{self._stderr.report()}")

    async def _check_alive(self) -> None:
        proc = self._proc
        assert proc is not None
        if proc.returncode is not None:
            raise await self._fail(f"nats-server exited with code {proc.returncode} while starting")

    async def _wait_for_ports_file(self, binary: Path, store_dir: Path, deadline: float) -> str:
        assert self._proc is not None
        # The server names it after the base name of its argv[0] and its pid.
        path = store_dir / f"{binary.name}_{self._proc.pid}.ports"
        while True:
            await self._check_alive()
            url = _read_ports_file(path)
            if url is not None:
                return url
            if time.monotonic() >= deadline:
                raise await self._fail(
                    f"nats-server did not write its ports file to {store_dir} within "
                    f"{self.start_timeout:g} s"
                )
            await asyncio.sleep(0.02)

    async def _wait_for_jetstream(self, url: str, deadline: float) -> None:
        last_error: BaseException | None = None
        delay = 0.02
        while True:
            await self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise await self._fail(
                    f"JetStream at {url} did not answer within {self.start_timeout:g} s "
                    f"(last error: {last_error!r})"
                )
            try:
                await asyncio.wait_for(
                    _probe_jetstream(url, remaining, self.connect_options), remaining
                )
                return
            except (OSError, TimeoutError, nats.errors.Error) as error:
                last_error = error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
