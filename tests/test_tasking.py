"""Stopping background tasks: a cancellation that is swallowed must not hang shutdown."""

from __future__ import annotations

import asyncio

from fxdesk.tasking import stop_task, wait_event


async def test_a_task_that_shrugs_off_a_cancellation_is_still_stopped() -> None:
    shrugged = 0

    async def stubborn() -> None:
        nonlocal shrugged
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                shrugged += 1
                if shrugged > 2:
                    raise
                # what asyncio.wait_for on 3.11 can do when its inner future finishes at the
                # moment of the cancel: the loop goes on as if nothing had been asked
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await stop_task(task, patience=0.05)
    assert task.cancelled()
    assert shrugged == 3


async def test_stop_task_retrieves_a_failure_instead_of_raising_it() -> None:
    async def failing() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    await stop_task(task)
    assert task.done() and not task.cancelled()


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True
