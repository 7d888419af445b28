"""Two people, two browsers: log in and register through the page, tasks and chat cross live."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.factories import PASSWORD
from tests.web.conftest import Site, element_shot, screenshot, task_card, wait_live


async def test_two_users_see_each_other_live(site: Site, browser: Browser) -> None:
    await site.user("alice")

    # Alice logs in through the form on a desktop.
    alice = await site.page(browser, "alice")
    await expect(alice.locator("#auth-view")).to_be_visible()
    await screenshot(alice, "desktop-login")
    # Keyboard only: the username field has the focus; Tab to the password, Enter submits.
    await expect(alice.locator("#login-username")).to_be_focused()
    await alice.keyboard.type("alice")
    await alice.keyboard.press("Tab")
    await alice.keyboard.type(PASSWORD)
    await alice.keyboard.press("Enter")
    await wait_live(alice)
    await expect(alice.locator("#whoami")).to_have_text("alice · user")
    assert await unlabelled(alice) == []

    # Bob creates an account on a 360 px phone.
    bob = await site.page(browser, "bob", mobile=True)
    await screenshot(bob, "mobile-login")
    await bob.locator("#register-username").fill("bob")
    await bob.locator("#register-password").fill("bobs-password-1")
    await bob.locator("#register-confirm").fill("bobs-password-1")
    await bob.get_by_role("button", name="Create account").click()
    await wait_live(bob)
    await expect(bob.locator("#whoami")).to_have_text("bob · user")

    # Alice adds a task (Enter in the title submits); Bob sees it appear without reloading.
    await alice.locator("#new-description").fill("Numbers from the 25 April table.")
    await alice.locator("#new-priority").select_option("high")
    await alice.get_by_label("New task").fill("Prepare the EUR report")
    await alice.get_by_label("New task").press("Enter")
    on_bob = task_card(bob, "Prepare the EUR report")
    await expect(on_bob).to_be_visible()
    await expect(on_bob.locator(".badge-open")).to_have_text("Open")
    await expect(on_bob.locator(".task-meta .who")).to_have_text("alice")
    await expect(bob.locator("#tasks-count")).to_have_text("1 of 1")

    # Alice finishes it from the keyboard; Bob sees it turn done, with her name.
    await task_card(alice, "Prepare the EUR report").get_by_role("button", name="Finish").focus()
    await alice.keyboard.press("Enter")
    await expect(on_bob.locator(".badge-done")).to_have_text("Done")
    await expect(on_bob.locator(".finisher")).to_have_text("alice")
    await expect(on_bob).to_have_attribute("data-status", "done")
    await expect(on_bob.get_by_role("button", name="Finish")).to_have_count(0)

    # A second task, to show the board with both states.
    await bob.get_by_label("New task").fill("Check the JPY nominal")
    await bob.get_by_role("button", name="Add task").click()
    await expect(task_card(alice, "Check the JPY nominal")).to_be_visible()

    # Filters: only done tasks, then a search.
    await alice.get_by_label("Status").select_option("done")
    await expect(alice.locator("#task-list li.task")).to_have_count(1)
    await alice.get_by_label("Status").select_option("")
    await alice.get_by_label("Search").fill("jpy")
    await expect(alice.locator("#task-list li.task")).to_have_count(1)
    await expect(task_card(alice, "Check the JPY nominal")).to_be_visible()
    await alice.get_by_label("Search").fill("")
    await expect(alice.locator("#task-list li.task")).to_have_count(2)

    # Chat lines cross both ways.
    await bob.get_by_role("textbox", name="Message").fill("Thanks, alice!")
    await bob.get_by_role("button", name="Send").click()
    await expect(alice.locator("#chat-log .chat-line").last).to_contain_text("Thanks, alice!")
    await expect(alice.locator("#chat-log .chat-line").last.locator(".who")).to_have_text("bob")
    await alice.get_by_role("textbox", name="Message").fill("You're welcome — the report is in.")
    await alice.keyboard.press("Enter")
    await expect(bob.locator("#chat-log .chat-line").last).to_contain_text("the report is in")
    await expect(bob.locator("#chat-log .chat-line.mine")).to_have_count(1)

    await element_shot(alice, "#tasks", "desktop-tasks")
    await element_shot(bob, "#tasks", "mobile-tasks")
    await element_shot(alice, "#chat", "desktop-chat")
    await element_shot(bob, "#chat", "mobile-chat")

    # A reload keeps the session (cookie) and the history; logging out returns to the form.
    await bob.reload()
    await wait_live(bob)
    await expect(bob.locator("#chat-log .chat-line")).to_have_count(2)
    await bob.get_by_role("button", name="Log out").click()
    await expect(bob.locator("#auth-view")).to_be_visible()
    await expect(bob.locator("#auth-notice")).to_have_text("You are logged out.")
    await expect(bob.locator("#conn")).to_have_attribute("data-state", "offline")
    assert not site.console, site.console


async def unlabelled(page: Page) -> list[str]:
    """Visible controls without an accessible name (a label, aria-label or text)."""
    return list(
        await page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea, button')]
                .filter((el) => el.offsetParent !== null)
                .filter((el) => !(el.labels && el.labels.length)
                    && !el.getAttribute('aria-label')
                    && !el.getAttribute('aria-labelledby')
                    && !(el.tagName === 'BUTTON' && el.textContent.trim()))
                .map((el) => el.outerHTML.slice(0, 80))"""
        )
    )
