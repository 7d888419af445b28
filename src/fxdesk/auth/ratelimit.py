"""Failed-login limiting per account and per client address, with a Retry-After answer."""

from __future__ import annotations

import math
import time
from collections import deque


class SlidingWindowCounter:
    """Counts events per key within the last `window` seconds; memory is bounded by pruning."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        if not events:
            del self._events[key]
        return events

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it is not over the limit."""
        now = time.monotonic()
        events = self._recent(key, now)
        if len(events) < self.limit:
            return 0
        return max(1, math.ceil(events[-self.limit] + self.window - now))

    def hit(self, key: str) -> None:
        now = time.monotonic()
        if len(self._events) >= self.max_keys:
            self._prune(now)
        events = self._events.setdefault(key, deque())
        events.append(now)
        while len(events) > self.limit:
            events.popleft()

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in list(self._events):
            self._recent(key, now)
        if len(self._events) >= self.max_keys:  # still full: drop the oldest half
            oldest = sorted(self._events, key=lambda k: self._events[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._events[key]


class LoginLimiter:
    def __init__(self, per_account: int, per_address: int, window: float) -> None:
        self.accounts = SlidingWindowCounter(per_account, window)
        self.addresses = SlidingWindowCounter(per_address, window)

    def retry_after(self, account: str, address: str) -> int:
        return max(self.accounts.retry_after(account), self.addresses.retry_after(address))

    def failed(self, account: str, address: str) -> None:
        self.accounts.hit(account)
        self.addresses.hit(address)

    def succeeded(self, account: str) -> None:
        self.accounts.reset(account)
