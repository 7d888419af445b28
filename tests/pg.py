"""A real PostgreSQL for the tests: Debian's binaries, a temp cluster on a free loopback port.

The cluster runs as the `postgres` OS user when the tests run as root (CI does; PostgreSQL
refuses to run as root). `FXDESK_TEST_DATABASE_URL` (a `postgresql+asyncpg://` URL whose user
may create databases) points the same tests at an existing server instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from tests.factories import free_port

ENV_URL = "FXDESK_TEST_DATABASE_URL"


def _bindir() -> Path:
    for pattern in ("/usr/lib/postgresql/*/bin",):
        found = sorted(glob.glob(pattern), key=lambda p: int(p.split("/")[-2]))
        if found:
            return Path(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL binaries not found: `make test` installs Debian's postgresql package"
    )


def _as_owner(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PostgresServer:
    """One throwaway cluster; `url(db)` gives an asyncpg URL for a database on it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fxdesk-pg-"))
        self.data = self.root / "data"
        self._bin = _bindir()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_owner(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"
        )
        subprocess.run(
            _as_owner(
                [
                    str(self._bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.root / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                _as_owner(
                    [str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
                ),
                check=False,
                capture_output=True,
                timeout=30,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/postgres"


class Databases:
    """Creates databases on a server: a migrated template once, then a fresh copy per test."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = sa.engine.make_url(admin_url)
        self._counter = 0
        self._prefix = f"fxt{os.getpid()}_{int(time.time()) % 100000}"

    def url(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, *statements: str) -> None:
        import asyncio

        import asyncpg

        async def run() -> None:
            url = self.admin_url
            conn = await asyncpg.connect(
                host=url.host,
                port=url.port,
                user=url.username,
                password=url.password,
                database=url.database or "postgres",
            )
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        if _loop_running():
            _run_in_thread(run)
        else:
            asyncio.run(run())

    def create(self, template: str | None = None) -> str:
        self._counter += 1
        name = f"{self._prefix}_{self._counter}"
        if template:
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        else:
            self._execute(f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_in_thread(factory: object) -> None:
    import asyncio
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(factory())  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The admin URL of a server for the run: the one named in the environment, or our own."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    server = PostgresServer()
    try:
        server.start()
        yield server.admin_url
    finally:
        server.stop()
