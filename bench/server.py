"""Starts a throwaway fxdesk server (own data dir, free port) for a benchmark run."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def spawned_server(
    users: list[tuple[str, str, str]],
    log_level: str = "WARNING",
    extra_env: dict[str, str] | None = None,
    before_start: Callable[[Path], None] | None = None,
) -> Iterator[str]:
    """Yield the base URL of a fresh `fxdesk serve` with `users` (name, password, role) created.

    `before_start(database_file)` runs after the users exist and before the server starts,
    e.g. to bulk-load data. The data dir is removed when the server has stopped.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="fxdesk-bench-"))
    env = {
        **os.environ,
        "FXDESK_DATA_DIR": str(data_dir),
        "FXDESK_LOG_LEVEL": log_level,
        "FXDESK_COOKIE_SECURE": "false",
        **(extra_env or {}),
    }
    for name, password, role in users:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fxdesk",
                "user",
                "create",
                name,
                "--role",
                role,
                "--password",
                password,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    if before_start is not None:
        before_start(data_dir / "fxdesk.db")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fxdesk", "serve", "--port", str(port)], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not come up")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def login_cookie(base: str, username: str, password: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/login", json={"username": username, "password": password}
    )
    response.raise_for_status()
    return f"session_token={response.cookies['session_token']}"
