"""A real JetStream cluster for tests: N nats-server processes on loopback, killable one by one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js.api import StorageType
from nats.js.errors import APIError

from fxdesk.events.nats_process import _pdeathsig_preexec, find_nats_server
from tests.factories import free_ports, quiet

LOG_TAIL_LINES = 30
PROBE_STREAM, PROBE_SUBJECT = "NATSCLUSTER_PROBE", "natscluster.probe"


class NatsClusterError(RuntimeError):
    """The cluster did not come up, or did not settle, in time; the message says where it hung."""


@dataclass
class _Node:
    index: int
    name: str
    client_port: int
    cluster_port: int
    http_port: int
    directory: Path
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def config_file(self) -> Path:
        return self.directory / "server.conf"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"


class NatsCluster:
    """`size` nats-servers forming one JetStream cluster; each keeps its ports and store for life.

    Use as `async with NatsCluster(tmp_dir) as cluster:`; `start()` returns once every node
    reports healthy and JetStream has a meta leader. Nodes are numbered 0..size-1 and named
    `<name>-<i>` (the names `stream_info(...).cluster.leader` reports).
    """

    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        *,
        name: str = "fxdesk-test",
        binary: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.base_dir = base_dir
        self.name = name
        self.timeout = timeout
        self._binary = binary
        ports = free_ports(3 * size)
        self._nodes = [
            _Node(
                index=i,
                name=f"{name}-{i}",
                client_port=ports[3 * i],
                cluster_port=ports[3 * i + 1],
                http_port=ports[3 * i + 2],
                directory=base_dir / f"node{i}",
            )
            for i in range(size)
        ]

    @property
    def size(self) -> int:
        return len(self._nodes)

    @property
    def node_urls(self) -> list[str]:
        return [node.url for node in self._nodes]

    @property
    def urls(self) -> str:
        """Every node's client URL, comma-joined (the form FXDESK_NATS_URL takes)."""
        return ",".join(self.node_urls)

    @property
    def server_names(self) -> list[str]:
        return [node.name for node in self._nodes]

    def running(self, index: int) -> bool:
        return self._nodes[index].running

    def index_of(self, server_name: str) -> int:
        for node in self._nodes:
            if node.name == server_name:
                return node.index
        raise KeyError(f"no node named {server_name!r} in {self.server_names}")

    async def __aenter__(self) -> NatsCluster:
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
        """Start every node and wait until the cluster is healthy, or raise NatsClusterError."""
        try:
            for node in self._nodes:
                self._write_config(node)
                await self._spawn(node)
            await self.wait_healthy()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """SIGTERM every running node (SIGKILL after 5 s); idempotent."""
        await asyncio.gather(*(self._terminate(node) for node in self._nodes))

    async def kill(self, index: int) -> None:
        """SIGKILL node `index`, as a crash would; its store stays for `restart`."""
        node = self._nodes[index]
        if node.proc is not None and node.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                node.proc.send_signal(signal.SIGKILL)
            await node.proc.wait()

    async def restart(self, index: int) -> None:
        """Start node `index` again (killed or not) on its ports and store; waits until healthy."""
        node = self._nodes[index]
        await self._terminate(node)
        await self._spawn(node)
        await self.wait_healthy()

    async def heal(self) -> None:
        """Bring back every node that is down, and wait until the whole cluster is healthy."""
        for node in self._nodes:
            if not node.running:
                await self._spawn(node)
        await self.wait_healthy()

    async def wait_healthy(self, timeout: float | None = None) -> None:
        """Every running node answers /healthz, and JetStream (its meta leader) answers."""
        deadline = time.monotonic() + (timeout or self.timeout)
        async with httpx.AsyncClient(timeout=2.0) as http:
            for node in self._nodes:
                if node.running:
                    await self._wait_node_healthy(http, node, deadline)
        await self._wait_meta_leader(deadline)
        if all(node.running for node in self._nodes):
            await self._wait_placement(deadline)

    async def connect(self) -> NatsClient:
        """A client of the whole cluster (the caller closes it)."""
        return await nats.connect(
            servers=self.node_urls, connect_timeout=2, reconnect_time_wait=0.5, error_cb=quiet
        )

    async def stream_leader(self, stream: str, timeout: float = 20.0) -> int:
        """The index of the node leading `stream`, once it has a leader (bounded wait)."""
        return await self.wait_for_stream_leader(stream, timeout=timeout)

    async def wait_for_stream_leader(
        self, stream: str, *, timeout: float = 20.0, not_on: int | None = None
    ) -> int:
        """The index of `stream`'s leader once there is one (and it is not node `not_on`)."""
        deadline = time.monotonic() + timeout
        last: object = None
        nc = await self.connect()
        try:
            while True:
                try:
                    info = await nc.jetstream(timeout=2).stream_info(stream)
                    leader = info.cluster.leader if info.cluster else None
                    last = leader
                    if leader and (not_on is None or self.index_of(leader) != not_on):
                        return self.index_of(leader)
                except (APIError, nats.errors.Error, TimeoutError) as exc:
                    last = exc
                if time.monotonic() >= deadline:
                    raise NatsClusterError(
                        f"stream {stream!r} has no leader (other than node {not_on}) after "
                        f"{timeout:g} s; last answer: {last!r}"
                    )
                await asyncio.sleep(0.2)
        finally:
            await nc.close()

    async def delete_streams(self) -> None:
        """Delete every stream of the account, so the next test's stream subjects do not overlap."""
        nc = await self.connect()
        try:
            js = nc.jetstream(timeout=5)
            for info in await js.streams_info():
                assert info.config.name is not None  # every stream has a name
                with contextlib.suppress(APIError):
                    await js.delete_stream(info.config.name)
        finally:
            await nc.close()

    def _write_config(self, node: _Node) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        # JSON is valid NATS configuration syntax, and it quotes the paths safely. Every node
        # lists every route, its own included: a server recognises and drops a route to itself.
        config = {
            "server_name": node.name,
            "host": "127.0.0.1",
            "port": node.client_port,
            "http": f"127.0.0.1:{node.http_port}",
            "jetstream": {"store_dir": str(node.directory / "jetstream")},
            "cluster": {
                "name": self.name,
                "listen": f"127.0.0.1:{node.cluster_port}",
                "routes": [f"nats-route://127.0.0.1:{other.cluster_port}" for other in self._nodes],
            },
        }
        node.config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")

    async def _spawn(self, node: _Node) -> None:
        binary = find_nats_server(self._binary)
        with node.log_file.open("ab") as log:
            node.proc = await asyncio.create_subprocess_exec(
                str(binary),
                "--config",
                str(node.config_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # The servers die with the test run, however it ends.
                preexec_fn=_pdeathsig_preexec(),
            )

    async def _terminate(self, node: _Node) -> None:
        proc = node.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _wait_node_healthy(
        self, http: httpx.AsyncClient, node: _Node, deadline: float
    ) -> None:
        url = f"http://127.0.0.1:{node.http_port}/healthz"
        last: object = None
        while True:
            if not node.running:
                raise self._error(f"node {node.index} ({node.name}) exited while starting", node)
            try:
                response = await http.get(url)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text.strip()}"
            except httpx.HTTPError as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise self._error(
                    f"node {node.index} ({node.name}) not healthy within {self.timeout:g} s "
                    f"(last answer of {url}: {last})",
                    node,
                )
            await asyncio.sleep(0.1)

    async def _wait_meta_leader(self, deadline: float) -> None:
        last: object = None
        while True:
            try:
                nc = await self.connect()
                try:
                    await nc.jetstream(timeout=2).account_info()
                    return
                finally:
                    await nc.close()
            except (APIError, nats.errors.Error, OSError, TimeoutError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise self._error(f"JetStream has no meta leader (last error: {last!r})")
            await asyncio.sleep(0.2)

    async def _wait_placement(self, deadline: float) -> None:
        """A stream can be placed on every node. Until the meta leader has heard from each peer
        (moments after /healthz and a meta leader), a stream with a replica on every node is
        refused with "no suitable peers for placement, peer offline"."""
        last: object = None
        while True:
            try:
                nc = await self.connect()
                try:
                    js = nc.jetstream(timeout=5)
                    await js.add_stream(
                        name=PROBE_STREAM,
                        subjects=[PROBE_SUBJECT],
                        num_replicas=len(self._nodes),
                        storage=StorageType.MEMORY,
                    )
                    await js.delete_stream(PROBE_STREAM)
                    return
                finally:
                    await nc.close()
            except (APIError, nats.errors.Error, OSError, TimeoutError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise self._error(f"no stream can be placed on every node (last error: {last!r})")
            await asyncio.sleep(0.2)

    def _error(self, message: str, node: _Node | None = None) -> NatsClusterError:
        nodes = [node] if node is not None else self._nodes
        logs = "\n".join(f"--- {n.name} ({n.log_file}):\n{n.log_tail()}" for n in nodes)
        return NatsClusterError(f"{message}\n{logs}")
