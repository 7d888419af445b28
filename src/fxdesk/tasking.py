"""Waiting and stopping background tasks in a way a cancellation cannot slip through.

On Python 3.11 `asyncio.wait_for` can swallow a cancellation that arrives just as the awaited
thing finishes (CPython gh-86296); a loop built on it then never stops, and shutdown hangs on
`await task`. `asyncio.timeout` has no such race, and `stop_task` cancels until the task is done.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for `event` at most `seconds`; True if it was set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


async def stop_task(task: asyncio.Task[object] | None, patience: float = 1.0) -> None:
    """Cancel `task` and wait until it has ended, cancelling again if it shrugged one off."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=patience)
    if not task.cancelled():
        with contextlib.suppress(Exception):
            task.result()  # retrieved, so it is never reported as an unretrieved exception
