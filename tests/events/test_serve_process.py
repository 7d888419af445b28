"""`fxdesk serve` owns its embedded nats-server: none survives SIGTERM or SIGKILL of the service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import free_port, nats_children, process_gone


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_no_nats_server_outlives_the_service(tmp_path: Path, signum: signal.Signals) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FXDESK_DATA_DIR": str(tmp_path),
        "FXDESK_LOG_LEVEL": "WARNING",
    }
    env.pop("FXDESK_NATS_URL", None)
    service = subprocess.Popen(
        [sys.executable, "-m", "fxdesk", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready is not None and ready.json()["status"] == "ready"
        children = nats_children(service.pid)
        assert len(children) == 1, children
        nats_pid = children[0]

        service.send_signal(signum)
        service.wait(timeout=30)
        deadline = time.monotonic() + 15
        while not process_gone(nats_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process_gone(nats_pid), f"nats-server {nats_pid} outlived the service"
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
