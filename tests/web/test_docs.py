"""/docs and /redoc: fxdesk's own copies of Swagger UI and ReDoc (nothing from a CDN), under a
CSP, and an OpenAPI document whose security schemes make Swagger's "Authorize" work."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest
from playwright.async_api import Browser, Route

from fxdesk.users.models import Role
from tests.live import token_for
from tests.test_route_protection import PUBLIC
from tests.web.conftest import Site

DOC_PAGES = ["/docs", "/redoc"]


class _References(HTMLParser):
    """Every src/href/spec-url a page names."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url", "data-openapi-url") and value:
                self.urls.append(value)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("path", DOC_PAGES)
async def test_doc_pages_load_only_fxdesks_own_assets(path: str, client: httpx.AsyncClient) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # No absolute URL at all: nothing to fetch from another host (no CDN, no fonts, no favicon).
    assert not re.search(r"(https?:)?//[a-z0-9]", response.text, re.IGNORECASE), response.text
    urls = _references(response.text)
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], url
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url


@pytest.mark.parametrize("path", DOC_PAGES)
async def test_doc_pages_have_a_csp(path: str, client: httpx.AsyncClient) -> None:
    response = await client.get(path)
    csp = response.headers["content-security-policy"]
    pairs = (part.strip().partition(" ") for part in csp.split(";"))
    directives = {name: value for name, _, value in pairs}
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert "<script>" not in response.text  # every script is a file


async def test_openapi_declares_cookie_and_bearer_security(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    by_type = {
        (s["type"], s.get("in"), s.get("name"), s.get("scheme")): n for n, s in schemes.items()
    }
    cookie = by_type[("apiKey", "cookie", "session_token", None)]
    bearer = by_type[("http", None, None, "bearer")]
    alternatives: list[dict[str, list[str]]] = [{cookie: []}, {bearer: []}]
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if (method.upper(), path) in PUBLIC:
                assert "security" not in operation, (method, path)
            else:
                assert operation.get("security") == alternatives, (method, path)
                checked += 1
    assert checked > 20
    assert schema["paths"]["/api/v1/auth/me"]["get"]["security"] == alternatives


async def test_swagger_ui_renders_offline_and_authorize_works(browser: Browser, site: Site) -> None:
    """In chromium, with every request to another host aborted: the operation list renders
    under the CSP (a violation is a console error, which fails the test), and a Bearer token
    given to "Authorize" signs GET /api/v1/auth/me in."""
    user = await site.user("swagger", Role.user)
    context = await browser.new_context()
    site.contexts.append(context)
    foreign: list[str] = []

    async def only_fxdesk(route: Route) -> None:
        if route.request.url.startswith(site.url + "/"):
            await route.continue_()
        else:
            foreign.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_fxdesk)
    page = await context.new_page()
    site.watch(page, "docs")
    await page.goto(site.url + "/docs")
    await page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/auth/me']")
    assert await page.locator(".opblock").count() > 20

    await page.click("button.authorize")
    dialog = page.locator(".modal-ux")
    await dialog.wait_for()
    assert await dialog.get_by_text("session_token").count() >= 1  # the cookie scheme is listed
    await dialog.locator("input[type=text], input[type=password]").last.fill(
        await token_for(site.app, user)
    )
    await dialog.locator("button.authorize").last.click()
    await dialog.locator("button.btn-done").first.click()

    me = page.locator(".opblock-get:has(.opblock-summary-path[data-path='/api/v1/auth/me'])")
    await me.locator(".opblock-summary").click()
    await me.locator("button.try-out__btn").click()
    await me.locator("button.execute").click()
    status = me.locator(".live-responses-table tbody .response-col_status").first
    await status.wait_for()
    assert (await status.inner_text()).strip().startswith("200")
    assert '"username": "swagger"' in await me.locator(".live-responses-table").inner_text()
    assert foreign == []


async def test_redoc_renders_offline(browser: Browser, site: Site) -> None:
    context = await browser.new_context()
    site.contexts.append(context)
    foreign: list[str] = []

    async def only_fxdesk(route: Route) -> None:
        if route.request.url.startswith(site.url + "/"):
            await route.continue_()
        else:
            foreign.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_fxdesk)
    page = await context.new_page()
    site.watch(page, "redoc")
    await page.goto(site.url + "/redoc")
    await page.get_by_role("heading", name=re.compile("fxdesk")).first.wait_for()
    await page.locator("[data-section-id*='operation']").first.wait_for()
    assert await page.locator("[data-section-id*='operation']").count() > 20
    assert foreign == []
    # The bundle's "API docs by Redocly" footer names its logo on a CDN; the CSP blocks it before
    # any request is made (the image then hides itself). Nothing else may be refused.
    blocked_logo = [line for line in site.console if "cdn.redoc.ly/redoc/logo-mini.svg" in line]
    assert len(blocked_logo) <= 1
    site.console[:] = [line for line in site.console if line not in blocked_logo]
