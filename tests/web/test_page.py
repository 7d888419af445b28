"""The page itself: served at / with a strict CSP, public, static, and leaking nothing."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from fxdesk.web.router import STATIC_DIR, content_security_policy

JS_DIR = STATIC_DIR / "js"


async def test_index_is_public_static_and_strict(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert csp == content_security_policy()  # no served address known: a test transport
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"  # sockets: see tests/ops/test_headers.py
    assert "unsafe" not in csp
    assert "set-cookie" not in response.headers
    # The same bytes for everyone: no user data, no token, no server details.
    assert response.text == (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def test_markup_has_no_inline_code_and_no_third_party() -> None:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/static/' in tag and 'type="module"' in tag, tag
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), "inline script"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "inline style"
    assert "<style" not in html
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in {".html", ".js", ".css"}:
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"https?://(?!www\.w3\.org/)", text), path
            assert "innerHTML" not in text and "eval(" not in text, path


def test_javascript_never_turns_money_into_floats() -> None:
    """Values from the API are strings; the page compares and subtracts them with BigInt."""
    for path in JS_DIR.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert "parseFloat" not in text, path
        assert "toFixed" not in text or path.name == "chart.js", path  # pixel coordinates only


async def test_static_files_are_served_with_module_types(client: httpx.AsyncClient) -> None:
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', index):
        response = await client.get(ref)
        assert response.status_code == 200, ref
        assert "content-security-policy" in response.headers
    for path in JS_DIR.glob("*.js"):
        response = await client.get(f"/static/js/{path.name}")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        for imported in re.findall(r'from "\./([\w-]+\.js)"', response.text):
            assert (JS_DIR / imported).is_file(), (path.name, imported)
    assert (await client.get("/static/js/missing.js")).status_code == 404
    assert (await client.get("/static/../router.py")).status_code == 404
    assert (await client.get("/static/%2e%2e/router.py")).status_code == 404
    assert (await client.post("/static/app.css")).status_code == 405


def test_static_dir_is_inside_the_package() -> None:
    assert STATIC_DIR.is_dir()
    assert Path(STATIC_DIR, "index.html").is_file()
