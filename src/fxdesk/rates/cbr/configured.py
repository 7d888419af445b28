"""The CBR client as the app's settings configure it (FXDESK_CBR_* URLs, timeout, retries)."""

from __future__ import annotations

import httpx

from fxdesk.config import Settings
from fxdesk.rates.cbr.client import CbrClient

__all__ = ["make_cbr_client", "mirror_daily_url"]


def mirror_daily_url(setting: str) -> str:
    """FXDESK_CBR_MIRROR_URL may name the site root; the client wants its daily_json.js."""
    return setting if setting.endswith(".js") else setting.rstrip("/") + "/daily_json.js"


def make_cbr_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> CbrClient:
    return CbrClient(
        settings.cbr_base_url,
        mirror_daily_url(settings.cbr_mirror_url),
        transport=transport,
        timeout=settings.cbr_timeout_seconds,
        retries=settings.cbr_retries,
        backoff=settings.cbr_backoff_seconds,
    )
