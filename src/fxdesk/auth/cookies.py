"""The `session_token` cookie: HttpOnly, SameSite=Lax, Path=/, Secure unless configured off."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response

from fxdesk.auth.dependencies import COOKIE_NAME
from fxdesk.auth.sessions import open_session
from fxdesk.config import Settings
from fxdesk.users.models import User


async def start_session(request: Request, response: Response, user: User) -> datetime:
    """Open a server-side session for `user`, put its token in the cookie, return its expiry."""
    settings: Settings = request.app.state.settings
    token, expires_at = await open_session(
        request.app.state.database,
        request.app.state.tokens,
        user,
        user_agent=request.headers.get("user-agent", ""),
        address=client_address(request),
    )
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=settings.session_lifetime_seconds,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    expiry: datetime = expires_at
    return expiry


def clear_cookie(request: Request, response: Response) -> None:
    settings: Settings = request.app.state.settings
    response.delete_cookie(
        COOKIE_NAME, path="/", secure=settings.cookie_secure, httponly=True, samesite="lax"
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
