"""One bounded schemathesis run over every operation of /openapi.json, as an admin and a user.

All four phases run: examples, coverage and fuzzing per operation (`schema.parametrize()`), and
the stateful phase, an API state machine over the links schemathesis infers from the schema
(dependency analysis: POST /api/v1/tasks -> /api/v1/tasks/{task_id}, ...). Every response must
conform to the documented status codes, content types and schemas, never be a 5xx (except the
502/503 of the two routes that fetch from cbr.ru, unreachable here by design) and never carry a
hash, token or traceback.

Each call gets a fresh server-side session of its role, and the two fuzz accounts are restored
first, so a fuzzed logout-all, password change, role change or deactivation cannot blind (or
promote) the later calls. The database holds the 2026-03-19 and 2026-04-25 rate tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis import checks
from schemathesis.generation.stateful.state_machine import APIStateMachine

from fxdesk.app import create_app
from fxdesk.auth.passwords import Passwords
from fxdesk.auth.ratelimit import LoginLimiter
from fxdesk.auth.service import AccountService
from fxdesk.db import Database
from fxdesk.users.models import Role
from tests.factories import bearer, make_settings, sqlite_session_token
from tests.rates.conftest import DAILY_0319, DAILY_0425, store_tables

_workdir = Path(tempfile.mkdtemp(prefix="fxdesk-fuzz-all-"))
_db_path = _workdir / "fxdesk.db"
ACCOUNTS = {"admin": ("fuzz-admin", Role.admin), "user": ("fuzz-user", Role.user)}
# Only these talk to an upstream (cbr.ru, a closed loopback port here): their 502/503 is documented.
UPSTREAM_ROUTES = {("POST", "/api/v1/rates/refresh"), ("POST", "/tasks/run")}
LEAKS = re.compile(r"\$argon2|password_hash|Traceback|eyJ[\w-]+\.eyJ")


async def _prepare() -> None:
    url = f"sqlite+aiosqlite:///{_db_path}"
    database = Database(url)
    await database.migrate()
    accounts = AccountService(Passwords(1), LoginLimiter(5, 20, 900))
    for username, role in ACCOUNTS.values():
        await accounts.register(database, username, f"{username}-password", role=role)
    await database.dispose()
    await store_tables(url, DAILY_0319, DAILY_0425)


asyncio.run(_prepare())
# No retries: a fuzzed refresh meets the closed loopback port set in tests/conftest.py at once.
app = create_app(make_settings(_workdir, _db_path, cbr_retries=0, cbr_backoff_seconds=0))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


def _bearer(role: str) -> dict[str, str]:
    """A fresh session of `role`'s account, restored first to active and to its own role."""
    username, account_role = ACCOUNTS[role]
    with sqlite3.connect(_db_path) as conn:
        conn.execute(
            "UPDATE users SET is_active = 1, role = ? WHERE username = ?",
            (account_role.value, username),
        )
    return bearer(sqlite_session_token(app, _db_path, username))


def no_leak(ctx: Any, response: Any, case: schemathesis.Case[Any]) -> bool:
    """No password hash, token or traceback in any body."""
    assert not LEAKS.search(response.text or ""), (case.method, case.path, response.text[:500])
    return True


def no_server_error(ctx: Any, response: Any, case: schemathesis.Case[Any]) -> bool:
    """No 5xx, but the documented 502/503 of the routes that fetch from cbr.ru."""
    upstream = (case.method.upper(), case.operation.path) in UPSTREAM_ROUTES
    allowed = upstream and response.status_code in (502, 503)
    assert response.status_code < 500 or allowed, (case.method, case.path, response.text[:500])
    return True


# What the service promises: the documented status codes, content types, headers and bodies.
# (Not schemathesis' checks of how strict the request schemas are, nor of 405/Allow routing.)
CHECKS = [
    no_server_error,
    no_leak,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
# The state machine also checks that a created resource is there, and (for a plain user) that
# a deleted one is gone: staff still see a soft-deleted task and its history, to restore it.
STATEFUL_CHECKS = {
    "admin": [*CHECKS, checks.ensure_resource_availability],
    "user": [*CHECKS, checks.ensure_resource_availability, checks.use_after_free],
}


@pytest.mark.parametrize("role", sorted(ACCOUNTS))
@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation(case: schemathesis.Case[Any], role: str) -> None:
    headers = _bearer(role)
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)


SCENARIOS = 12  # per role, each of up to STEPS calls
STEPS = 12
_STATEFUL_SETTINGS = settings(
    # Generation only, as schemathesis runs its state machines: a scenario's draws depend on
    # what the server answered, so a replayed or shrunk one would not draw the same again.
    phases=[Phase.generate],
    max_examples=SCENARIOS,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _machine(role: str, done: list[int]) -> type[APIStateMachine]:
    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"headers": _bearer(role)}

        def validate_response(
            self, response: Any, case: schemathesis.Case[Any], **kwargs: Any
        ) -> None:
            case.validate_response(
                response,
                checks=STATEFUL_CHECKS[role],
                headers=kwargs.get("headers"),
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

        def teardown(self) -> None:
            done.append(1)
            super().teardown()

    return Machine


@pytest.mark.parametrize("role", sorted(ACCOUNTS))
def test_stateful_links(role: str) -> None:
    """SCENARIOS scenarios over the inferred links. Hypothesis may stop a run when a scenario
    draws differently from an earlier one with the same start (the server's state moved on):
    that is no finding, so the next run (another seed) goes on, as schemathesis' runner does.
    A failed check is never swallowed."""
    done: list[int] = []
    for attempt in range(5):
        with contextlib.suppress(FlakyStrategyDefinition):
            seed(attempt)(_machine(role, done)).run(settings=_STATEFUL_SETTINGS)
        if len(done) >= SCENARIOS:
            break
    assert len(done) >= SCENARIOS, f"only {len(done)} scenarios ran"


def test_state_machine_follows_the_task_links() -> None:
    """The stateful phase is more than random calls: a created task's id feeds its routes."""
    schema.as_state_machine()  # infers the links into the schema
    created = schema.raw_schema["paths"]["/api/v1/tasks"]["post"]["responses"]["201"]
    targets = {link.get("operationRef") for link in created.get("links", {}).values()}
    for method in ("get", "patch", "delete"):
        assert f"#/paths/~1api~1v1~1tasks~1{{task_id}}/{method}" in targets, targets
