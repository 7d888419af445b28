"""The embedded nats-server's store directory, besides JetStream's own data: the lock that keeps
a second server off it, the client password and the server config that requires it (both 0600),
and the ports file the server writes once it listens."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from fxdesk.events.nats_process import NatsServerError
from fxdesk.logging import get_logger

# One logger for all the embedded server's lines, whichever of its modules writes them.
log = get_logger("fxdesk.events.nats_server")

LOCK_FILE_NAME = "fxdesk-nats.lock"
# With auth on: the password clients must present (user EMBEDDED_USER), generated once, and the
# server's config file that requires it; both 0600 in the store dir.
PASSWORD_FILE_NAME = "password"  # noqa: S105  (a file name, not a password)
CONFIG_FILE_NAME = "server.conf"
EMBEDDED_USER = "fxdesk"


async def acquire_store_lock(store_dir: Path, deadline: float) -> int:
    """An fd holding the exclusive lock on `store_dir`, waiting until `deadline` (monotonic)
    for another holder to let go, else NatsServerError. Closing the fd releases it."""
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
    return fd


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


def write_server_config(store_dir: Path, password: str) -> Path:
    """Write (or replace) the server config in `store_dir` that requires `password`; its path."""
    config = store_dir / CONFIG_FILE_NAME
    _write_private(config, _server_config(password), replace=True)
    return config


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
