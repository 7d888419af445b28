"""The embedded nats-server's own log: the verbosity flags it is started with, and its stderr,
read line by line into our log at a level matching the server's, with the last lines kept to
quote when it fails to start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections import deque
from typing import IO

from fxdesk.logging import get_logger

# One logger for all the embedded server's lines, whichever of its modules writes them.
log = get_logger("fxdesk.events.nats_server")

STDERR_TAIL_LINES = 40

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


class ServerStderr:
    """The stderr of the current nats-server process: each line forwarded to our log, the last
    STDERR_TAIL_LINES kept for `report()`. One reader at a time; `start` again after a restart."""

    def __init__(self) -> None:
        self._tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.ReadTransport | None = None

    async def start(self, read_fd: int) -> None:
        """Read the pipe's read end `read_fd` (now ours to close) until EOF, from an empty tail."""
        pipe: IO[bytes] = os.fdopen(read_fd, "rb", buffering=0)
        reader = asyncio.StreamReader()
        try:
            transport, _ = await asyncio.get_running_loop().connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            pipe.close()
            raise
        self._transport = transport
        self._tail.clear()
        self._task = asyncio.create_task(self._read(reader), name="nats-stderr")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await reader.readline()
            except ValueError:
                # A line longer than the reader's limit; the remainder is dropped, keep going.
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip()
            self._tail.append(line)
            if not line:
                continue
            match = _SERVER_LINE.match(line)
            server_level, message = (match["level"], match["message"]) if match else ("INF", line)
            method = _FORWARD_LEVEL.get(server_level, "debug")
            if message in _EXPECTED_WARNINGS:
                method = "debug"
            getattr(log, method)("nats_server_log", level_server=server_level, line=message)

    async def close(self, proc: asyncio.subprocess.Process | None) -> None:
        """Stop reading the stderr of `proc` (the process it came from, None if gone)."""
        task, self._task = self._task, None
        transport, self._transport = self._transport, None
        if task is not None:
            # EOF arrives once the server has exited; if it is still alive, stop reading.
            if proc is None or proc.returncode is None:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 1.0)
        if transport is not None:
            transport.close()

    async def drain(self) -> None:
        """Once the server has exited: let the reader take in its last words (up to 1 s)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), 1.0)

    def report(self) -> str:
        if not self._tail:
            return "(nats-server wrote nothing to stderr)"
        lines = "\n".join(self._tail)
        return f"last lines of nats-server stderr:\n{lines}"
