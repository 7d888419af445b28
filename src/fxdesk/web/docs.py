"""GET /docs (Swagger UI) and /redoc from fxdesk's own copies of their assets, under a CSP, and
the cookie and Bearer security schemes in the OpenAPI document (so "Authorize" works).

The Swagger UI and ReDoc bundles come from the `fastapi-offline` package (no CDN: the pages work
offline); the few lines that start Swagger UI are ours, in `docs_static/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.staticfiles import StaticFiles

from fxdesk.auth.dependencies import COOKIE_NAME, get_current_user

ASSETS_URL = "/static/docs"
OWN_ASSETS = Path(__file__).with_name("docs_static")

# Swagger UI and ReDoc set inline styles (React, styled-components), ReDoc draws with data: images
# and searches in a blob: worker; scripts still come only from this origin.
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_HEADERS = {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "APIKeyCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE_NAME,
        "description": "The session cookie set by POST /api/v1/auth/login.",
    },
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The same session token, as `Authorization: Bearer <token>`.",
    },
}
# Either scheme will do (a list of alternatives).
SECURITY: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]

router = APIRouter(include_in_schema=False)


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(title)}</title>
  <link rel="icon" href="{ASSETS_URL}/favicon.png">
{head}
</head>
<body>
{body}
</body>
</html>
"""
    return HTMLResponse(html, headers=DOCS_HEADERS)


def _openapi_url(request: Request) -> str:
    return escape(f"{request.scope.get('root_path', '')}{request.app.openapi_url}")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: try the API from the browser (with this browser's session or a Bearer token)."""
    return _page(
        "fxdesk API - Swagger UI",
        f'  <link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">',
        f'<div id="swagger-ui" data-openapi-url="{_openapi_url(request)}"></div>\n'
        f'<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{ASSETS_URL}/swagger-init.js"></script>',
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the API reference as one readable page."""
    return _page(
        "fxdesk API - ReDoc",
        "",
        f'<redoc spec-url="{_openapi_url(request)}"></redoc>\n'
        f'<script src="{ASSETS_URL}/redoc.standalone.js"></script>',
    )


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def _declare_security(app: FastAPI) -> None:
    """Add the security schemes to the OpenAPI document, and to every operation that needs a
    session (whatever depends on `get_current_user`), once, when the document is first built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for route in iter_route_contexts(app.routes):  # included routers' routes too
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            if get_current_user not in _calls(route.dependant):
                continue
            operations = schema["paths"].get(route.path_format, {})
            for method in route.methods or ():
                operation = operations.get(method.lower())
                if operation is not None:
                    operation["security"] = SECURITY
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets under /static/docs (the app's own docs_url and
    redoc_url must be None), and declare the security schemes."""
    app.include_router(router)
    app.mount(
        ASSETS_URL,
        StaticFiles(directory=OWN_ASSETS, packages=[("fastapi_offline", "static")]),
        name="docs-assets",
    )
    _declare_security(app)
