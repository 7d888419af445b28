"""GET / (the page, with a strict Content-Security-Policy), the /static files it loads, the docs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from fxdesk.auth.origins import served_origins
from fxdesk.deps import settings_of
from fxdesk.web.docs import install_docs

STATIC_DIR = Path(__file__).with_name("static")


def content_security_policy(sockets: Iterable[str] = ()) -> str:
    """Everything comes from this origin: no inline script or style, no eval, no third party;
    the page's live socket may also go to `sockets` (the ws/wss form of fxdesk's origins)."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            " ".join(("connect-src 'self'", *sorted(sockets))),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
        )
    )


PAGE_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    # Revalidate every time (cheap with ETag / Last-Modified): a new release shows at once.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/", include_in_schema=False)
async def index(request: Request) -> FileResponse:
    """The dashboard shell: static HTML, the same for everyone (data comes from the API)."""
    # CSP sources cannot name an IPv6 literal: there 'self' alone covers the page's socket.
    sockets = [
        origin.replace("http", "ws", 1)
        for origin in served_origins(request, settings_of(request))
        if "[" not in origin
    ]
    headers = {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(sockets)}
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=headers
    )


class PageFiles(StaticFiles):
    """StaticFiles that sends the page's headers with every file (and every 304)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(PAGE_HEADERS)
        return response


def install_web(app: FastAPI) -> None:
    """Serve the page at `/`, /docs and /redoc, and their files under `/static` (all public:
    they hold no data)."""
    app.include_router(router)
    install_docs(app)  # before /static: its files are under /static/docs
    app.mount("/static", PageFiles(directory=STATIC_DIR), name="static")
