"""Every route outside an explicit public list refuses an anonymous request."""

from __future__ import annotations

import re

import httpx
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/ready"),
    ("GET", "/api/v1/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("GET", "/"),  # the web page: static HTML, the same for everyone
}
# Mounted apps (no route methods): the page's and the docs' static files, public and free of
# data, each with a file it serves.
PUBLIC_MOUNTS = {"/static": "app.css", "/static/docs": "swagger-ui-bundle.js"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_non_public_route_refuses_anonymous_requests(
    app, client: httpx.AsyncClient
) -> None:
    checked = 0
    for route in iter_route_contexts(app.routes):
        for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
            if (method, route.path) in PUBLIC:
                continue
            assert route.path is not None, route  # every route with methods has a path
            response = await client.request(method, _concrete(route.path), json={})
            assert response.status_code == 401, (method, route.path, response.status_code)
            checked += 1
    assert checked >= 5  # the walk really found the protected routes


async def test_public_list_names_only_existing_routes(app) -> None:
    existing = {(m, r.path) for r in iter_route_contexts(app.routes) for m in (r.methods or ())}
    assert existing >= PUBLIC, PUBLIC - existing


async def test_every_mount_is_known_public(app, client: httpx.AsyncClient) -> None:
    mounts = {route.path for route in app.routes if isinstance(route, Mount)}
    assert mounts == set(PUBLIC_MOUNTS)
    for path in mounts:  # anonymous requests are answered, and never with someone's data
        response = await client.get(f"{path}/{PUBLIC_MOUNTS[path]}")
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
