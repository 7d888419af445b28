"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fxdesk.db import Database
from fxdesk.logging import get_logger

router = APIRouter(tags=["ops"])
log = get_logger("fxdesk.ops")

_HEALTH_BODY = b'{"status":"ok"}'


@router.get("/health")
async def health() -> Response:
    """The process is up and its event loop answers."""
    return Response(_HEALTH_BODY, media_type="application/json")


@router.get("/ready", responses={503: {"description": "A dependency is unavailable"}})
async def ready(request: Request) -> Any:
    """Every dependency is reachable and the event path works: 200 when all of it does, else
    503 with each failing check saying why."""
    state = request.app.state
    database: Database = state.database
    checks: dict[str, str] = {}
    try:
        await database.ping()
        checks["database"] = "ok"
    except Exception as exc:
        log.warning("ready_check_failed", dependency="database", error=str(exc))
        checks["database"] = "unavailable"
    broker = getattr(state, "broker", None)
    checks["nats"] = "ok" if broker is not None and broker.connected else "unavailable"
    events = getattr(state, "events", None)
    checks["events"] = "not started" if events is None else events.readiness() or "ok"
    relay = getattr(state, "relay", None)
    checks["relay"] = "not started" if relay is None else relay.problem or "ok"
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
