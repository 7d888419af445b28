"""How uvicorn runs fxdesk: the server options of `fxdesk serve`, the tests and the benchmarks."""

from __future__ import annotations

import gc
from typing import Any

SERVER_OPTIONS: dict[str, Any] = {
    "log_config": None,
    # fxdesk reads X-Forwarded-For itself, only from FXDESK_TRUSTED_PROXIES (auth/cookies.py);
    # uvicorn's own rewrite would believe any loopback peer.
    "proxy_headers": False,
    "timeout_graceful_shutdown": 10,
    # Named, not "auto": the sans-I/O protocol keeps a connection to its parser, two timers and
    # the application's task, where the legacy `websockets` one adds three tasks per socket.
    "ws": "websockets-sansio",
    "ws_ping_interval": 20,
    "ws_ping_timeout": 20,
    "ws_max_size": 65_536,
    # Every client gets the same bytes; compressing them once per connection would cost more CPU
    # than the fan-out itself.
    "ws_per_message_deflate": False,
}


def settle_garbage_collector() -> None:
    """Keep the cyclic GC from pausing live delivery (once the served app has started).

    A full collection walks every tracked object: with a few thousand sockets open it took
    150-250 ms here, a stall every client feels at once. What start-up built lives as long as
    the process, so it is frozen out of the collector; and since nearly everything a request or
    an event allocates dies young (freed by reference counting), collections of the young
    generations may run less often and full ones much less often. A process-wide setting: only
    the serving process makes it, never an app a test builds.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 1_000)
