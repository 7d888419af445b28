"""A stale edit shows the other version (reload or overwrite); history; delete and restore."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Browser, expect

from fxdesk.users.models import Role
from tests.live import token_for
from tests.web.conftest import Gate, Site, drop_sockets, element_shot, task_card


async def test_stale_edit_history_delete_restore(site: Site, browser: Browser) -> None:
    owner = await site.user("olga")
    moderator = await site.user("max", Role.moderator)
    async with httpx.AsyncClient(
        base_url=site.url, cookies={"session_token": await token_for(site.app, owner)}
    ) as api:
        created = await api.post(
            "/api/v1/tasks",
            json={"title": "Reconcile the CNY account", "description": "Before 15:00."},
        )
        assert created.status_code == 201
    olga = await site.page(browser, "olga", user=owner, mobile=True)
    boss = await site.page(browser, "max", user=moderator)

    # Roles: deleting is for moderators; editing her own task is Olga's right.
    mine = task_card(olga, "Reconcile the CNY account")
    await expect(mine.get_by_role("button", name="Edit")).to_be_visible()
    await expect(mine.get_by_role("button", name="Delete")).to_have_count(0)
    await expect(
        task_card(boss, "Reconcile the CNY account").get_by_role("button", name="Delete")
    ).to_be_visible()

    # Olga starts editing version 1 ...
    await task_card(olga, "Reconcile the CNY account").get_by_role("button", name="Edit").click()
    dialog = olga.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Title").fill("Reconcile the CNY account today")
    # ... while Max edits the same task and saves first.
    await task_card(boss, "Reconcile the CNY account").get_by_role("button", name="Edit").click()
    editor = boss.get_by_role("dialog")
    await editor.get_by_label("Description").fill("Before 14:00, says the bank.")
    await editor.get_by_label("Priority").select_option("high")
    await boss.get_by_role("button", name="Save").click()
    await expect(boss.get_by_role("dialog")).to_be_hidden()

    # Olga's dialog shows that, with Max's version; plain Save is blocked until she chooses.
    conflict = olga.locator("#te-conflict")
    await expect(conflict).to_be_visible()
    await expect(conflict).to_contain_text("max saved a newer version (v2)")
    await expect(conflict.locator('dd[data-field="description"]')).to_have_text(
        "Before 14:00, says the bank."
    )
    await expect(conflict.locator('dd[data-field="priority"]')).to_have_text("high")
    await expect(olga.locator("#te-save")).to_be_disabled()
    await element_shot(olga, "#task-dialog", "mobile-edit-conflict")

    # "Load their version" puts Max's text in the form; she edits on top of it.
    await dialog.get_by_role("button", name="Load their version").click()
    await expect(conflict).to_be_hidden()
    await expect(dialog.get_by_label("Description")).to_have_value("Before 14:00, says the bank.")
    await expect(dialog.get_by_label("Title")).to_have_value("Reconcile the CNY account")
    await dialog.get_by_label("Title").fill("Reconcile the CNY account today")

    # Max saves again meanwhile: this time Olga overwrites with hers.
    await task_card(boss, "Reconcile the CNY account").get_by_role("button", name="Edit").click()
    await boss.get_by_role("dialog").get_by_label("Title").fill("Reconcile CNY")
    await boss.get_by_role("button", name="Save").click()
    await expect(conflict).to_contain_text("max saved a newer version (v3)")
    await expect(conflict.locator('dd[data-field="title"]')).to_have_text("Reconcile CNY")
    await dialog.get_by_role("button", name="Overwrite with mine").click()
    await expect(dialog).to_be_hidden()
    final = task_card(boss, "Reconcile the CNY account today")
    await expect(final).to_be_visible()
    await expect(final.locator(".task-meta")).to_contain_text("v4")
    await expect(final.locator(".task-desc")).to_have_text("Before 14:00, says the bank.")

    # The history, as the moderator sees it.
    await final.get_by_role("button", name="History").click()
    history = boss.locator("#history-dialog")
    await expect(history.locator(".history-entry")).to_have_count(4)
    await expect(history.locator(".history-entry").nth(0)).to_contain_text("olga created")
    await expect(history.locator(".history-entry").nth(1)).to_contain_text("max updated")
    await expect(history.locator(".history-entry").nth(3)).to_contain_text("olga updated")
    await expect(history.locator(".history-entry").nth(3)).to_contain_text(
        "Title: Reconcile CNY → Reconcile the CNY account today"
    )
    await element_shot(boss, "#history-dialog", "desktop-task-history")
    await boss.keyboard.press("Escape")
    await expect(history).to_be_hidden()
    await (
        task_card(olga, "Reconcile the CNY account today")
        .get_by_role("button", name="History")
        .click()
    )
    await expect(olga.locator("#history-dialog .history-entry")).to_have_count(4)
    await element_shot(olga, "#history-dialog", "mobile-task-history")
    await olga.get_by_role("button", name="Close").click()

    # Moderators delete and restore; Olga's board follows live.
    await final.get_by_role("button", name="Delete").click()
    await expect(task_card(olga, "Reconcile the CNY account today")).to_have_count(0)
    await expect(boss.locator("#tasks-deleted")).to_be_visible()
    await boss.locator("#tasks-deleted summary").click()
    await boss.locator("#tasks-deleted-list").get_by_role("button", name="Restore").click()
    await expect(task_card(olga, "Reconcile the CNY account today")).to_be_visible()
    await expect(boss.locator("#tasks-deleted")).to_be_hidden()

    # Finish, then reopen (moderator only).
    await (
        task_card(olga, "Reconcile the CNY account today")
        .get_by_role("button", name="Finish")
        .click()
    )
    await expect(final.locator(".finisher")).to_have_text("olga")
    await final.get_by_role("button", name="Reopen").click()
    await expect(task_card(olga, "Reconcile the CNY account today")).to_have_attribute(
        "data-status", "open"
    )
    assert not site.console, site.console


async def test_a_save_the_page_never_heard_of_gets_412(site: Site, browser: Browser) -> None:
    """While the page is cut off, someone saves: its PATCH gets 412 and the conflict shows."""
    owner = await site.user("olga")
    moderator = await site.user("max", Role.moderator)
    headers = {"Cookie": f"session_token={await token_for(site.app, moderator)}"}
    mine = {"Cookie": f"session_token={await token_for(site.app, owner)}"}
    async with httpx.AsyncClient(base_url=site.url, headers=mine) as api:
        created = (await api.post("/api/v1/tasks", json={"title": "Wire the fee"})).json()
    olga = await site.page(browser, "olga", user=owner)
    await task_card(olga, "Wire the fee").get_by_role("button", name="Edit").click()
    dialog = olga.get_by_role("dialog")
    await dialog.get_by_label("Title").fill("Wire the fee today")

    hub = site.app.state.hub
    gate = Gate(hub)  # the page reconnects, but hears nothing until the gate opens
    try:
        assert drop_sockets(hub, owner) == 1
        await asyncio.wait_for(gate.waiting.wait(), 10)
        async with httpx.AsyncClient(base_url=site.url, headers=headers) as api:
            saved = await api.patch(
                f"/api/v1/tasks/{created['id']}",
                json={"description": "EUR 120, from the main account."},
                headers={"If-Match": '"1"'},
            )
            assert saved.status_code == 200
        await dialog.get_by_role("button", name="Save").click()
        conflict = olga.locator("#te-conflict")
        await expect(conflict).to_contain_text("max saved a newer version (v2)")
        await expect(conflict.locator('dd[data-field="description"]')).to_have_text(
            "EUR 120, from the main account."
        )
        await element_shot(olga, "#task-dialog", "desktop-edit-conflict")
        gate.open.set()
    finally:
        gate.close()
    await expect(olga.locator("#conn")).to_have_attribute("data-state", "live")
    await dialog.get_by_role("button", name="Overwrite with mine").click()
    await expect(dialog).to_be_hidden()
    card = task_card(olga, "Wire the fee today")
    await expect(card.locator(".task-meta")).to_contain_text("v3")
    await expect(card.locator(".task-desc")).to_have_count(0)  # hers, whole: no description
    # Chromium itself logs every 4xx response; the 412 is this protocol's answer to a stale
    # edit, so that one line is expected. Nothing else may appear.
    assert site.console == [
        "[olga] console: Failed to load resource: "
        "the server responded with a status of 412 (Precondition Failed)"
    ], site.console
    site.console.clear()
