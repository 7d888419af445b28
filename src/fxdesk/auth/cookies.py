"""The `session_token` cookie: HttpOnly, SameSite=Lax, Path=/, Secure unless configured off."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from fastapi import Request, Response

from fxdesk.auth.dependencies import COOKIE_NAME
from fxdesk.auth.sessions import open_session
from fxdesk.config import Settings
from fxdesk.deps import database_of, settings_of, tokens_of
from fxdesk.users.models import User


async def start_session(request: Request, response: Response, user: User) -> datetime:
    """Open a server-side session for `user`, put its token in the cookie, return its expiry."""
    settings: Settings = settings_of(request)
    token, expires_at = await open_session(
        database_of(request),
        tokens_of(request),
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
    settings: Settings = settings_of(request)
    response.delete_cookie(
        COOKIE_NAME, path="/", secure=settings.cookie_secure, httponly=True, samesite="lax"
    )


UNKNOWN_ADDRESS = "unknown"
# Hops of X-Forwarded-For looked at, right to left; a longer chain is cut there.
MAX_FORWARDED_HOPS = 32

Network = IPv4Network | IPv6Network


def client_address(request: Request) -> str:
    """The address login limits and security logs use: the socket peer, or, when the peer is
    one of FXDESK_TRUSTED_PROXIES, the right-most untrusted address in X-Forwarded-For."""
    settings: Settings = settings_of(request)
    peer = request.client.host if request.client else None
    return resolve_client_address(
        peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies
    )


def resolve_client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str:
    """Walk from the peer leftwards through X-Forwarded-For while the hop is a trusted proxy;
    the first hop that is not is the client. Everything left of it was written by the client
    (or its own proxies) and is never believed. A malformed hop ends the walk at the trusted
    proxy that passed it on."""
    if peer is None:
        return UNKNOWN_ADDRESS
    current = _parse(peer)
    if current is None or not _is_trusted(current, trusted):
        return str(current) if current is not None else peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
        address = _parse(hop)
        if address is None:
            break
        current = address
        if not _is_trusted(current, trusted):
            break
    return str(current)


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    """An address as a proxy writes it (`1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443`,
    `1.2.3.4:5678`), IPv4-mapped IPv6 as IPv4; None when it is none of those."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPv4Address | IPv6Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)
