"""The origin check shared by cookie-authenticated writes (CSRF) and WebSocket handshakes."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers


def origin_allowed(headers: Headers, allowed_origins: list[str]) -> bool:
    """True when the request comes from an allowed origin, its own host, or is not cross-site.

    A browser always sends `Origin` on cross-origin writes and WebSocket handshakes; a request
    without it and without `Sec-Fetch-Site: cross-site` comes from a non-browser client that
    cannot have been forged by a third-party page.
    """
    origin = headers.get("origin")
    if origin is None:
        return headers.get("sec-fetch-site", "").lower() != "cross-site"
    normalized = origin.rstrip("/").lower()
    if normalized in allowed_origins:
        return True
    host = headers.get("host", "").lower()
    return bool(host) and urlsplit(normalized).netloc == host
