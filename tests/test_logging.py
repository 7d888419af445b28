"""An unhandled error writes one bounded log entry: no locals, headers, cookies or body."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi import Request

from fxdesk.config import Settings
from fxdesk.logging import configure_logging
from tests.factories import asgi_client, bearer, make_settings

LOCAL_SECRET = "local-secret-f00dfeed"
HEADER_TOKEN = "header-token-c0ffee11"
COOKIE_TOKEN = "cookie-token-deadbeef"
BODY_PASSWORD = "body-password-abad1dea"
# A few KB: the traceback's cap (fxdesk.logging.TRACEBACK_MAX_CHARS) and the entry's fields.
MAX_ENTRY = 10_000
SECRETS = (LOCAL_SECRET, HEADER_TOKEN, COOKIE_TOKEN, BODY_PASSWORD)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _recurse(depth: int, api_key: str) -> None:
    if depth:
        _recurse(depth - 1, api_key)
    raise RuntimeError("the service broke")


async def _explode(request: Request) -> None:
    password = LOCAL_SECRET  # a local the traceback must not show
    body = await request.body()
    _recurse(400, password + body.decode())


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_a_forced_error_writes_one_bounded_entry_without_secrets(
    log_format: str,
    app: Any,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    configure_logging(
        make_settings(tmp_path, settings.resolved_database_url, log_format=log_format)
    )
    app.add_api_route("/test-only/explode", _explode, methods=["POST"])
    capsys.readouterr()

    # raise_app_exceptions stays on: an error that escaped the app would fail the test here.
    async with asgi_client(app, cookies={"session_token": COOKIE_TOKEN}) as client:
        response = await client.post(
            "/test-only/explode", json={"password": BODY_PASSWORD}, headers=bearer(HEADER_TOKEN)
        )
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}

    output = capsys.readouterr()
    logged = output.err + output.out
    assert logged.count("unhandled_error") == 1, logged[-2000:]
    assert "RuntimeError: the service broke" in logged
    assert len(logged) < MAX_ENTRY
    for secret in SECRETS:
        assert secret not in logged
    if log_format == "json":
        lines = [line for line in logged.splitlines() if line.strip()]
        assert len(lines) == 1  # the access line is below the WARNING level of test settings
        entry = json.loads(lines[0])
        assert entry["event"] == "unhandled_error" and entry["level"] == "error"
        assert entry["path"] == "/test-only/explode" and "Traceback" in entry["exception"]
        assert not {"headers", "cookies", "body"} & set(entry)


async def test_a_librarys_exception_log_is_bounded_too(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    """Standard-library records with exc_info (uvicorn's, for one) take the same path."""
    configure_logging(make_settings(tmp_path, settings.resolved_database_url))
    capsys.readouterr()

    def fail(api_key: str = LOCAL_SECRET) -> None:
        _recurse(400, api_key)

    try:
        fail()
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    logged = capsys.readouterr().err
    assert "RuntimeError: the service broke" in logged
    assert LOCAL_SECRET not in logged
    assert len(logged) < MAX_ENTRY
