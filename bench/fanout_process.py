"""The fan-out benchmark's server process and what /proc says about it and about this client.

The server is bench/fanout_server.py in a process of its own, with its own data dir and embedded
nats-server; bench/server.py creates its user, waits for it and stops it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from server import create_user, free_port, login_token, stop, wait_until_healthy

HERE = Path(__file__).resolve().parent
BENCH_USER, BENCH_PASSWORD = "fanout-bench", "fanout-bench-password"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def die_with_parent() -> None:
    """In the child before exec: SIGTERM it if this benchmark dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the server


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (fields 14 and 15 of /proc/pid/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def source_state() -> str:
    """The commit the server's code comes from, and whether the tree had local changes."""
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def runqueue_wait(pid: int) -> float:
    """Seconds the main thread of `pid` spent runnable but waiting for a CPU (schedstat)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    return float("nan")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Server:
    pid: int
    base: str
    ws_url: str
    token: str
    log_file: Path


def server_env(data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "FXDESK_DATA_DIR": str(data_dir),
        "FXDESK_LOG_LEVEL": "WARNING",
        "FXDESK_LOG_FORMAT": "json",  # one line per record; cheap to write and to count
        "FXDESK_COOKIE_SECURE": "false",
        # Loopback only: no rate polling, and any outbound URL points at a closed local port.
        "FXDESK_RATES_AUTOSTART": "false",
        "FXDESK_CBR_BASE_URL": "http://127.0.0.1:9/",
        "FXDESK_CBR_MIRROR_URL": "http://127.0.0.1:9/",
        "FXDESK_APILAYER_BASE_URL": "http://127.0.0.1:9/",
    }
    for name in (
        "FXDESK_NATS_URL",
        "FXDESK_DATABASE_URL",
        "FXDESK_DEMO",
        "FXDESK_APILAYER_API_KEY",
    ):
        env.pop(name, None)  # always a private SQLite database and an embedded nats-server
    return env


@contextlib.contextmanager
def spawned_server(keep_log: Path | None, trace_memory: bool = False) -> Iterator[Server]:
    """Run bench/fanout_server.py on a free loopback port with a fresh data dir; stop it after."""
    data_dir = Path(tempfile.mkdtemp(prefix="fxdesk-fanout-"))
    env = server_env(data_dir)
    log_file = data_dir / "server.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        # cwd: no stray .env from the caller's directory
        create_user(env, BENCH_USER, BENCH_PASSWORD, cwd=data_dir)
        port = free_port()
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(HERE / "fanout_server.py"), "--port", str(port)]
                + (["--tracemalloc"] if trace_memory else []),
                env=env,
                cwd=data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base, process, seconds=60)
        token = login_token(base, BENCH_USER, BENCH_PASSWORD, timeout=30)
        yield Server(process.pid, base, f"ws://127.0.0.1:{port}/api/v1/ws", token, log_file)
    finally:
        if process is not None:
            stop(process, timeout=60)
        if keep_log is not None and log_file.exists():
            shutil.copyfile(log_file, keep_log)
        shutil.rmtree(data_dir, ignore_errors=True)


def log_summary(log_file: Path) -> str:
    """`N records (levels...)` of the server's log so far, and its first error line if any."""
    levels: dict[str, int] = {}
    first_error = ""
    with contextlib.suppress(OSError), log_file.open(encoding="utf-8", errors="replace") as f:
        for count, line in enumerate(f):
            if count >= 1_000_000:
                break
            try:
                level = str(json.loads(line).get("level", "?"))
            except ValueError:
                level = "text"
            levels[level] = levels.get(level, 0) + 1
            if not first_error and level in ("error", "critical"):
                first_error = line.strip()[:300]
    total = sum(levels.values())
    text = f"{total} lines " + (str(levels) if levels else "")
    return text + (f"\n  first error: {first_error}" if first_error else "")
