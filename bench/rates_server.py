"""The server side of bench/rates_bench.py: fxdesk with rates loaded plus bare baseline routes."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, Body

from fxdesk.app import create_app
from fxdesk.auth.dependencies import CurrentUser
from fxdesk.auth.passwords import Passwords
from fxdesk.auth.ratelimit import LoginLimiter
from fxdesk.auth.service import AccountService
from fxdesk.config import Settings
from fxdesk.db import Database
from fxdesk.logging import configure_logging
from fxdesk.rates.cbr.daily import parse_daily
from fxdesk.rates.ingest import ingest_table
from fxdesk.serving import SERVER_OPTIONS

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "cbr"
USER, PASSWORD = "bench-user", "bench-password-123"

bare = APIRouter(prefix="/bench")
_bodies: dict[str, Any] = {}


@bare.post("/bodies")
async def set_bodies(bodies: dict[str, Any] = Body(...)) -> dict[str, bool]:
    """The bench client hands over real response bodies, so the baselines match them in size."""
    _bodies.update(bodies)
    return {"ok": True}


@bare.get("/bare/{name}")
async def bare_body(name: str) -> Any:
    """A bare FastAPI endpoint: a constant JSON body, serialised on every request."""
    return _bodies[name]


@bare.get("/bare-auth/{name}")
async def bare_body_auth(name: str, user: CurrentUser) -> Any:
    """The same, behind the session check every rates route has."""
    return _bodies[name]


async def prepare(settings: Settings, rows: int) -> None:
    database = Database(settings.resolved_database_url)
    await database.migrate()
    accounts = AccountService(Passwords(1), LoginLimiter(5, 20, 900))
    await accounts.register(database, USER, PASSWORD)
    tables = [
        parse_daily((FIXTURES / name).read_bytes())
        for name in ("XML_daily_2026-03-19.xml", "XML_daily_2026-04-25.xml")
    ]
    for table in tables:
        async with database.session() as session:
            await ingest_table(session, table)
    await database.dispose()
    # History for the listing: older tables, bulk-loaded (the ingest path is tested elsewhere).
    base = tables[0]
    rng = random.Random(7)
    per_day = len(base.rates)
    days = max(0, (rows - 2 * per_day) // per_day)
    db_file = settings.resolved_database_url.split("///", 1)[1]
    with sqlite3.connect(db_file) as conn:
        batch = []
        for back in range(1, days + 1):
            day = base.date - dt.timedelta(days=back)
            for rate in base.rates:
                value = (rate.value * Decimal(1 + rng.uniform(-0.2, 0.2))).quantize(rate.value)
                unit = value / rate.nominal
                batch.append(
                    (
                        rate.code,
                        day.isoformat(),
                        rate.nominal,
                        str(value),
                        str(unit),
                        rate.name,
                        "cbr",
                        f"{day.isoformat()} 09:00:00.000000",
                    )
                )
        conn.executemany(
            "INSERT INTO rates (code, date, nominal, value, unit_rate, name, source, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, row[-1]) for row in batch],
        )
        conn.execute("ANALYZE")
        total = conn.execute("SELECT count(*) FROM rates").fetchone()[0]
    print(f"rates rows stored: {total}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    settings = Settings(
        data_dir=args.data_dir, cookie_secure=False, log_level="WARNING", rates_autostart=False
    )
    settings.prepare()
    configure_logging(settings)
    asyncio.run(prepare(settings, args.rows))
    app = create_app(settings)
    app.include_router(bare)
    # The baselines are matched first, so routing past fxdesk's own routes never slows them
    # (FastAPI 0.165 tries routes in order, router by router: last place cost ~200 µs here).
    app.router.routes.insert(0, app.router.routes.pop())
    app.router._mark_routes_changed()  # the router caches its route order
    uvicorn.run(app, host="127.0.0.1", port=args.port, **SERVER_OPTIONS)


if __name__ == "__main__":
    main()
