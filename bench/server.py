"""Starts a throwaway fxdesk server (own data dir, free port) for a benchmark run.

The pieces (a user created through the CLI, waiting for /health, stopping, logging in) are
shared with benchmarks that start a server of their own (bench/fanout.py).
"""

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


def create_user(
    env: dict[str, str],
    name: str,
    password: str,
    role: str | None = None,
    cwd: Path | None = None,
) -> None:
    """`fxdesk user create` in the data dir `env` names (`role`: the CLI's default if None)."""
    subprocess.run(
        [sys.executable, "-m", "fxdesk", "user", "create", name]
        + (["--role", role] if role is not None else [])
        + ["--password", password],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=120,
    )


def wait_until_healthy(base: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    """Poll `base`/health every 0.1 s until it answers 200; fail if `process` exits first."""
    for _ in range(int(seconds * 10)):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} during start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server did not come up within {seconds:g} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM (a graceful shutdown), and SIGKILL if it has not ended within `timeout`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"server did not stop within {timeout:g} s of SIGTERM; killing it", file=sys.stderr)
        process.kill()
        process.wait(timeout=10)


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
        create_user(env, name, password, role)
    if before_start is not None:
        before_start(data_dir / "fxdesk.db")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fxdesk", "serve", "--port", str(port)], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process, seconds=30)
        yield base
    finally:
        stop(process)
        shutil.rmtree(data_dir, ignore_errors=True)


def login_token(base: str, username: str, password: str, timeout: float = 5.0) -> str:
    """The session token a password login at `base` sets."""
    response = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": username, "password": password},
        timeout=timeout,
    )
    response.raise_for_status()
    return str(response.cookies["session_token"])


def login_cookie(base: str, username: str, password: str) -> str:
    return f"session_token={login_token(base, username, password)}"
