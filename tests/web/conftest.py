"""Browser fixtures: Debian's chromium (Playwright, async API), the app under a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    WebSocket,
    async_playwright,
)

from fxdesk.app import create_app
from fxdesk.config import Settings
from fxdesk.events.nats_server import EmbeddedNats
from fxdesk.realtime.hub import Hub
from fxdesk.users.models import Role, User
from tests.factories import add_user, make_settings, purge_stream
from tests.live import serving, token_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
MOBILE: ViewportSize = {"width": 360, "height": 740}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
SIGNED_IN_HINT = "fxdesk:signed-in"


@pytest.fixture(scope="session")
def chromium() -> str:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing: `make browser` installs it")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    """One chromium for the whole run; every test gets fresh contexts (own cookies)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
def web_settings(tmp_path: Path, template_db: Path, nats_server: EmbeddedNats) -> Settings:
    db = tmp_path / "web.db"
    shutil.copyfile(template_db, db)
    # The production cookie (Secure): chromium treats http://127.0.0.1 as a secure context.
    return make_settings(tmp_path, db, nats_url=nats_server.url)


@dataclass
class Site:
    """A running fxdesk: its app (hub, database, tokens) and the base URL a browser opens."""

    app: FastAPI
    host: str
    password_hash: str
    console: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    async def user(self, name: str, role: Role = Role.user) -> User:
        return await add_user(self.app, name, role, password_hash=self.password_hash)

    def watch(self, page: Page, label: str) -> None:
        """Every console error, uncaught exception or CSP report of `page` is a failure."""

        def on_console(message: Any) -> None:
            if message.type == "error":
                self.console.append(f"[{label}] console: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console.append(f"[{label}] pageerror: {error}"))

    async def page(
        self,
        browser: Browser,
        label: str,
        *,
        user: User | None = None,
        mobile: bool = False,
        before_open: Callable[[Page], Awaitable[None] | None] | None = None,
    ) -> Page:
        """A new browser context on `/`; with `user`, already signed in (cookie + page hint)."""
        state: dict[str, Any] | None = None
        if user is not None:
            state = {
                "cookies": [
                    {
                        "name": "session_token",
                        "value": await token_for(self.app, user),
                        "domain": "127.0.0.1",
                        "path": "/",
                        "httpOnly": True,
                        "secure": True,
                        "sameSite": "Lax",
                        "expires": -1,
                    }
                ],
                "origins": [
                    {
                        "origin": self.url,
                        "localStorage": [{"name": SIGNED_IN_HINT, "value": "1"}],
                    }
                ],
            }
        context = await browser.new_context(
            viewport=MOBILE if mobile else DESKTOP,
            storage_state=state,  # type: ignore[arg-type]
            reduced_motion="reduce",
            locale="en-GB",
            timezone_id="Europe/Moscow",
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = await context.new_page()
        self.watch(page, label)
        if before_open is not None:
            result = before_open(page)
            if result is not None:
                await result
        await page.goto(self.url + "/")
        if user is not None:
            await wait_live(page)
        return page


def task_card(page: Page, title: str) -> Locator:
    """The board's card of the task titled `title`."""
    return page.locator("#task-list li.task").filter(
        has=page.locator(".task-title", has_text=title)
    )


async def wait_live(page: Page) -> None:
    """The dashboard is shown, the socket subscribed and the first data loaded."""
    await page.wait_for_selector("#dashboard:not([hidden])")
    await page.wait_for_selector("#conn[data-state=live]")
    await page.wait_for_selector("body:not([data-loading])")
    await page.wait_for_selector("#tasks-count:not(:empty)")


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    """artifacts/screenshots/<name>.png: the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


async def element_shot(page: Page, selector: str, name: str) -> None:
    """artifacts/screenshots/<name>.png: one element (a panel, a dialog)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.locator(selector).screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.fixture
async def site(web_settings: Settings, password_hash: str) -> AsyncIterator[Site]:
    assert web_settings.nats_url
    await purge_stream(web_settings.nats_url)
    app = create_app(web_settings, migrate=False)
    async with serving(app) as host:
        running = Site(app=app, host=host, password_hash=password_hash)
        try:
            yield running
        finally:
            for context in running.contexts:
                await context.close()
    assert not running.console, "\n".join(running.console)


CLOSE_SERVICE_RESTART = 1012


class SentFrames:
    """What the page sends on its live sockets, and the REST reads it makes."""

    def __init__(self, page: Page) -> None:
        self.subscribes: list[dict[str, Any]] = []
        self.reads: list[str] = []
        page.on("websocket", self._socket)
        page.on("request", lambda request: self.reads.append(request.url))

    def _socket(self, ws: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("op") == "subscribe":
                self.subscribes.append(message)

        ws.on("framesent", sent)


class Gate:
    """Holds the server's handling of `subscribe` until opened: what happens meanwhile is
    exactly what the page missed while it was away."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.open = asyncio.Event()
        self.waiting = asyncio.Event()
        self.original = hub.wait_caught_up

        async def held(limit_seconds: float) -> None:
            self.waiting.set()
            await self.open.wait()
            await self.original(limit_seconds)

        hub.wait_caught_up = held  # type: ignore[method-assign]

    def close(self) -> None:
        self.hub.wait_caught_up = self.original  # type: ignore[method-assign]


def drop_sockets(hub: Hub, user: User) -> int:
    """Close every live socket of `user` from the server side (as a restart would)."""
    dropped = 0
    for client in list(hub.clients):
        if client.user_id == user.id and client.reader is not None:
            client.closing = (CLOSE_SERVICE_RESTART, "service restart")
            client.drop()
            dropped += 1
    return dropped
