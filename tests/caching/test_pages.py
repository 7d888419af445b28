"""The read routes' remembered pages stay coherent: a write shows at once on its instance and
within a second on every other one; who may see what is part of the key; nothing is
remembered while the event path is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import update

from fxdesk.caching import CoherentCache
from fxdesk.events.schemas import Channel
from fxdesk.tasks.models import Task
from fxdesk.users.models import Role
from tests.factories import api_client as _api
from tests.factories import seconds_until
from tests.live import token_for
from tests.realtime.test_socket_revocation import _user, two

WITHIN = 1.0
__all__ = ["two"]  # the fixture: two instances of one deployment


async def _until(check: Callable[[], Awaitable[bool]], limit: float) -> float:
    return await seconds_until(check, limit, "the page changed")


async def test_a_write_shows_at_once_here_and_within_a_second_elsewhere(two: Any) -> None:
    app_a, host_a, _app_b, host_b = two
    alice = await _user(app_a, "alice")
    token = await token_for(app_a, alice)
    async with _api(host_a, token) as on_a, _api(host_b, token) as on_b:
        for client in (on_a, on_b):  # both instances remember the empty board and chat
            assert (await client.get("/api/v1/tasks")).json()["total"] == 0
            assert (await client.get("/api/v1/chat/messages")).json()["items"] == []
        board_etag = (await on_b.get("/api/v1/tasks")).headers["etag"]
        assert (
            await on_b.get("/api/v1/tasks", headers={"If-None-Match": board_etag})
        ).status_code == 304

        created = await on_a.post("/api/v1/tasks", json={"title": "Pay the EUR invoice"})
        assert created.status_code == 201
        task_id = created.json()["id"]
        # read-your-writes on the instance written to: the very next read
        assert (await on_a.get("/api/v1/tasks")).json()["total"] == 1

        async def b_sees_it() -> bool:
            return bool((await on_b.get("/api/v1/tasks")).json()["total"] == 1)

        assert await _until(b_sees_it, WITHIN) < WITHIN
        stale = await on_b.get("/api/v1/tasks", headers={"If-None-Match": board_etag})
        assert stale.status_code == 200  # the old ETag no longer matches

        # a task and its history, changed on b, read on a
        assert (await on_a.get(f"/api/v1/tasks/{task_id}")).json()["status"] == "open"
        history = (await on_a.get(f"/api/v1/tasks/{task_id}/history")).json()
        finished = await on_b.post(f"/api/v1/tasks/{task_id}/finish")
        assert finished.status_code == 200, finished.text

        async def a_sees_done() -> bool:
            task = (await on_a.get(f"/api/v1/tasks/{task_id}")).json()
            later = (await on_a.get(f"/api/v1/tasks/{task_id}/history")).json()
            return task["status"] == "done" and len(later) == len(history) + 1

        await _until(a_sees_done, WITHIN)

        posted = await on_b.post("/api/v1/chat/messages", json={"text": "paid"})
        assert posted.status_code == 201

        async def a_sees_chat() -> bool:
            items = (await on_a.get("/api/v1/chat/messages")).json()["items"]
            return [item["text"] for item in items] == ["paid"]

        await _until(a_sees_chat, WITHIN)


async def test_who_may_see_a_deleted_task_is_part_of_the_key(two: Any) -> None:
    app_a, host_a, _app_b, _host_b = two
    boss = await _user(app_a, "boss", Role.admin)
    bob = await _user(app_a, "bob")
    as_boss = _api(host_a, await token_for(app_a, boss))
    as_bob = _api(host_a, await token_for(app_a, bob))
    async with as_boss, as_bob:
        task_id = (await as_boss.post("/api/v1/tasks", json={"title": "Old"})).json()["id"]
        assert (await as_boss.delete(f"/api/v1/tasks/{task_id}")).status_code in (200, 204)
        for _ in range(2):  # the second time from memory
            assert (await as_boss.get(f"/api/v1/tasks/{task_id}")).status_code == 200
            assert (await as_boss.get(f"/api/v1/tasks/{task_id}/history")).status_code == 200
            assert (await as_bob.get(f"/api/v1/tasks/{task_id}")).status_code == 404
            assert (await as_bob.get(f"/api/v1/tasks/{task_id}/history")).status_code == 404


async def test_while_the_event_path_is_down_nothing_is_answered_from_memory(two: Any) -> None:
    app_a, _host_a, app_b, host_b = two
    alice = await _user(app_a, "alice")
    token = await token_for(app_a, alice)
    async with _api(host_b, token) as on_b:
        task_id = (await on_b.post("/api/v1/tasks", json={"title": "Before"})).json()["id"]
        assert (await on_b.get(f"/api/v1/tasks/{task_id}")).json()["title"] == "Before"
        app_b.state.events.problem = "the stream consumer delivered nothing for 9 s"
        try:
            # changed behind every cache's back: no event at all
            async with app_a.state.database.session() as session:
                await session.execute(update(Task).where(Task.id == task_id).values(title="After"))
            assert (await on_b.get(f"/api/v1/tasks/{task_id}")).json()["title"] == "After"
        finally:
            app_b.state.events.problem = None


class _LiveEvents:
    """Stands in for the event consumer: live, with listeners."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.problem: str | None = None

    def readiness(self) -> str | None:
        return self.problem


class _Database:
    def __init__(self) -> None:
        self.outbox_listeners: list[Any] = []


async def test_a_load_under_way_when_the_cache_forgets_is_not_kept() -> None:
    cache = CoherentCache[str]({Channel.tasks})
    events, database = _LiveEvents(), _Database()
    cache.follow(database, events)  # type: ignore[arg-type]
    release = asyncio.Event()
    loads = 0

    async def slow_load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return f"value {loads}"

    first = asyncio.ensure_future(cache.get("k", slow_load))
    second = asyncio.ensure_future(cache.get("k", slow_load))  # shares the first load
    await asyncio.sleep(0)
    database.outbox_listeners[0](frozenset({Channel.tasks}))  # a commit while it loads
    release.set()
    assert await first == await second == "value 1"
    assert loads == 1
    assert await cache.get("k", slow_load) == "value 2"  # the first was not kept
    assert await cache.get("k", slow_load) == "value 2"  # this one is
    events.listeners[0](1, Channel.chat, "{}")  # another channel's event: kept
    assert await cache.get("k", slow_load) == "value 2"
    events.listeners[0](2, Channel.tasks, "{}")
    assert await cache.get("k", slow_load) == "value 3"
    cache.unfollow()
    assert database.outbox_listeners == [] and events.listeners == []


async def test_a_waiter_loads_itself_when_the_first_request_is_cancelled() -> None:
    cache = CoherentCache[str]({Channel.tasks})
    cache.follow(_Database(), _LiveEvents())  # type: ignore[arg-type]
    started, release = asyncio.Event(), asyncio.Event()
    loads = 0

    async def slow_load() -> str:
        nonlocal loads
        loads += 1
        started.set()
        await release.wait()
        return f"value {loads}"

    first = asyncio.ensure_future(cache.get("k", slow_load))
    await started.wait()
    second = asyncio.ensure_future(cache.get("k", slow_load))  # waits for the first
    third = asyncio.ensure_future(cache.get("k", slow_load))
    await asyncio.sleep(0)
    first.cancel()  # its client went away
    for _ in range(3):  # the cancellation reaches the waiters; one of them loads
        await asyncio.sleep(0)
    release.set()
    assert await second == await third == "value 2"  # one of them loaded, once, for both
    assert loads == 2
    assert first.cancelled()
    release.clear()
    leader = asyncio.ensure_future(cache.get("other", slow_load))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(cache.get("other", slow_load))
    await asyncio.sleep(0)
    waiter.cancel()  # a waiter that is cancelled is, and the load goes on for the others
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    assert await leader == "value 3"


async def test_a_failed_load_fails_its_waiters_and_is_not_kept() -> None:
    cache = CoherentCache[str]({Channel.tasks})
    cache.follow(_Database(), _LiveEvents())  # type: ignore[arg-type]
    release = asyncio.Event()
    loads = 0

    async def failing_load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        raise RuntimeError(f"load {loads} failed")

    first = asyncio.ensure_future(cache.get("k", failing_load))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.get("k", failing_load))
    await asyncio.sleep(0)
    release.set()
    for waiter in (first, second):
        with pytest.raises(RuntimeError, match="load 1 failed"):
            await waiter
    with pytest.raises(RuntimeError, match="load 2 failed"):
        await cache.get("k", failing_load)
