"""Authentication and authorisation as dependencies: CurrentUser, require_role, the CSRF checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, Request

from fxdesk.auth.origins import origin_allowed
from fxdesk.auth.sessions import Authenticated
from fxdesk.auth.tokens import TokenCodec
from fxdesk.config import Settings
from fxdesk.db import SAFE_METHODS
from fxdesk.deps import settings_of, tokens_of, user_lookup_of
from fxdesk.errors import NotAuthenticated, PermissionDenied
from fxdesk.logging import security_event
from fxdesk.users.lookup import UserLookup
from fxdesk.users.models import Role, User

COOKIE_NAME = "session_token"
CROSS_SITE = "Cross-site request refused"


@dataclass(frozen=True, slots=True)
class Credential:
    token: str
    from_cookie: bool


def credential_from(authorization: str | None, cookies: dict[str, str]) -> Credential | None:
    """A Bearer header wins over the cookie; neither means anonymous."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return Credential(token.strip(), from_cookie=False)
        return None
    cookie = cookies.get(COOKIE_NAME)
    if cookie:
        return Credential(cookie, from_cookie=True)
    return None


async def _session_user(
    users: UserLookup, session_id: str, user_id: int, version: int, *, fresh: bool
) -> User | None:
    """The user of live session `session_id` if it is still `user_id`'s, active, at `version`
    (`fresh`: as the database says now, not as this instance remembers it; see UserLookup)."""
    user = await users.for_session(session_id, fresh=fresh)
    if user is None or user.id != user_id or not user.is_active or user.token_version != version:
        return None
    return user


async def authenticate_token(
    users: UserLookup, codec: TokenCodec, token: str, *, fresh: bool = True
) -> Authenticated:
    """The live session a token names, with its user; NotAuthenticated for a bad or expired
    token, an ended session or an inactive account. Only a read may pass `fresh=False`."""
    claims = codec.decode(token)
    user = await _session_user(
        users, claims.session_id, claims.user_id, claims.version, fresh=fresh
    )
    if user is None:
        raise NotAuthenticated("Invalid or expired session")
    users.seen(claims.session_id)
    return Authenticated(user, claims.session_id, claims.expires_at)


async def session_alive(users: UserLookup, auth: Authenticated) -> User | None:
    """`auth`'s user now, or None once its session has ended or its account was deactivated
    (what a long-lived socket checks before acting for its user)."""
    return await _session_user(
        users, auth.session_id, auth.user.id, auth.user.token_version, fresh=True
    )


async def get_current_user(request: Request) -> User:
    """The account behind the request's cookie or Bearer token: for a write as the database
    says now, for a read as this instance knows it (at most a second old; see UserLookup)."""
    credential = credential_from(request.headers.get("authorization"), request.cookies)
    if credential is None:
        raise NotAuthenticated()
    settings: Settings = settings_of(request)
    if (
        credential.from_cookie
        and request.method not in SAFE_METHODS
        and not origin_allowed(request, settings)
    ):
        refuse_cross_site(request)
    auth = await authenticate_token(
        user_lookup_of(request),
        tokens_of(request),
        credential.token,
        fresh=request.method not in SAFE_METHODS,
    )
    request.state.auth = auth
    return auth.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_session(request: Request, user: CurrentUser) -> Authenticated:
    """The request's session (after the same checks as CurrentUser)."""
    auth: Authenticated = request.state.auth
    return auth


CurrentSession = Annotated[Authenticated, Depends(get_current_session)]


def refuse_cross_site(request: Request) -> NoReturn:
    """Log the refusal (origin cut short) and answer 403."""
    origin = request.headers.get("origin")
    security_event("csrf_refused", origin=origin and origin[:200], path=request.url.path)
    raise PermissionDenied(CROSS_SITE)


async def require_same_origin(request: Request) -> None:
    """Refuse (403) a request made by a foreign page, with or without a cookie.

    For the routes that start or end a session (login, register, logout): it stops login and
    logout CSRF. Non-browser clients (no `Origin`, no `Sec-Fetch-Site`) pass.
    """
    if not origin_allowed(request, settings_of(request)):
        refuse_cross_site(request)


SameOrigin = Depends(require_same_origin)  # `dependencies=[SameOrigin]` on a route


def require_role(*roles: Role) -> Callable[[User], Awaitable[User]]:
    async def dependency(user: CurrentUser) -> User:
        if user.role not in roles:
            raise PermissionDenied()
        return user

    return dependency


AdminUser = Annotated[User, Depends(require_role(Role.admin))]
