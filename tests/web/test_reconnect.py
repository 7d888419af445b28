"""The server drops the page's socket: the page reconnects and catches up with `since` (or, when
the server no longer has what it missed, reloads with REST after `resync`)."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Browser, Page, expect

from fxdesk.chat.service import post_message
from fxdesk.realtime.hub import Hub
from fxdesk.tasks import service as tasks
from fxdesk.tasks.schemas import TaskCreate
from fxdesk.users.models import Role, User
from tests.factories import bearer
from tests.live import token_for
from tests.web.conftest import Gate, SentFrames, Site, drop_sockets, element_shot, task_card


async def happen_while_away(site: Site, author: User, title: str, text: str) -> int:
    """A task and a chat line, written through the services; returns the seq they reach."""
    database = site.app.state.database
    async with database.session() as session:
        await tasks.create_task(session, author, TaskCreate(title=title))
    async with database.session() as session:
        await post_message(session, author, text, site.app.state.chat_limiter)
    async with database.session(write=False) as session:
        from sqlalchemy import func, select

        from fxdesk.events.models import OutboxEvent

        target = int(await session.scalar(select(func.max(OutboxEvent.id))) or 0)
    hub: Hub = site.app.state.hub
    for _ in range(500):
        if hub.last_seq >= target:
            return target
        await asyncio.sleep(0.01)
    raise AssertionError(f"the hub never saw seq {target}")


async def test_page_catches_up_after_the_server_drops_it(site: Site, browser: Browser) -> None:
    reader = await site.user("rita")
    writer = await site.user("wade")
    frames: SentFrames | None = None

    def spy(page: Page) -> None:
        nonlocal frames
        frames = SentFrames(page)

    page = await site.page(browser, "rita", user=reader, before_open=spy)
    assert frames is not None
    hub: Hub = site.app.state.hub
    await happen_while_away(site, writer, "Seen live", "first line")
    await expect(task_card(page, "Seen live")).to_be_visible()
    seen = int(await page.locator("#conn").get_attribute("data-seq") or 0)
    assert seen >= 2
    reads_before = len(frames.reads)

    # 1. Dropped; two things happen while the page is away; it resumes after `seen`.
    gate = Gate(hub)
    try:
        assert drop_sockets(hub, reader) == 1
        await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        await expect(page.locator("#conn-text")).to_have_text("Reconnecting…")
        await element_shot(page, ".topbar", "desktop-reconnecting")
        await asyncio.wait_for(gate.waiting.wait(), 10)  # it is back, and asked for `since`
        reached = await happen_while_away(site, writer, "Missed while away", "missed line")
        gate.open.set()
    finally:
        gate.close()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(task_card(page, "Missed while away")).to_be_visible()
    await expect(page.locator("#chat-log .chat-line").last).to_contain_text("missed line")
    await expect(page.locator("#conn")).to_have_attribute("data-seq", str(reached))
    assert frames.subscribes[-1]["since"] == seen
    assert not [url for url in frames.reads[reads_before:] if "/api/v1/" in url], (
        "caught up from the socket, without reloading"
    )

    # 2. Dropped again, and the server forgets what it missed: `resync`, so a REST reload.
    seen = reached
    gate = Gate(hub)
    try:
        assert drop_sockets(hub, reader) == 1
        await asyncio.wait_for(gate.waiting.wait(), 10)
        await happen_while_away(site, writer, "Only after a reload", "after resync")
        hub.window.clear()  # as if the events had aged out of the replay window
        reads_before = len(frames.reads)
        gate.open.set()
    finally:
        gate.close()
    await expect(task_card(page, "Only after a reload")).to_be_visible()
    await expect(page.locator("#chat-log .chat-line").last).to_contain_text("after resync")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert frames.subscribes[-1]["since"] == seen
    reloaded = [url for url in frames.reads[reads_before:] if "/api/v1/tasks" in url]
    assert reloaded, "resync reloads the board with REST"
    await expect(page.locator("#task-list li.task")).to_have_count(3)
    assert not site.console, site.console


async def test_page_leaves_when_its_session_ends_elsewhere(site: Site, browser: Browser) -> None:
    """Logout-everywhere from another device closes the page's socket (4401): the page goes
    back to the login form at once, with the reason, instead of reconnecting."""
    user = await site.user("lena")
    page = await site.page(browser, "lena", user=user)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    async with httpx.AsyncClient(base_url=site.url) as other:
        token = await token_for(site.app, user)
        response = await other.post("/api/v1/auth/logout-all", headers=bearer(token))
        assert response.status_code == 200
    await expect(page.locator("#auth-view")).to_be_visible(timeout=3000)
    await expect(page.locator("#auth-notice")).to_have_text(
        "Your session has ended. Please log in again."
    )
    await expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    assert not site.console, site.console


async def test_page_takes_a_new_role_without_a_reload(site: Site, browser: Browser) -> None:
    """A role change closes the socket with 4403: the page asks who it is now and goes on."""
    user = await site.user("mona")
    admin = await site.user("boss", Role.admin)
    page = await site.page(browser, "mona", user=user)
    await expect(page.locator("#whoami")).to_have_text("mona · user")
    async with httpx.AsyncClient(base_url=site.url) as other:
        token = await token_for(site.app, admin)
        response = await other.patch(
            f"/api/v1/users/{user.id}",
            json={"role": "moderator"},
            headers=bearer(token),
        )
        assert response.status_code == 200
    await expect(page.locator("#whoami")).to_have_text("mona · moderator", timeout=3000)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert not site.console, site.console
