"""Property-based fuzzing of the auth and users routes: no input may produce a 5xx or a secret."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from fxdesk.app import create_app
from fxdesk.auth.passwords import Passwords
from fxdesk.auth.ratelimit import LoginLimiter
from fxdesk.auth.service import AccountService
from fxdesk.db import Database
from fxdesk.users.models import Role
from tests.conftest import make_settings, sqlite_session_token

_workdir = Path(tempfile.mkdtemp(prefix="fxdesk-fuzz-"))
_db_path = _workdir / "fxdesk.db"


async def _prepare() -> None:
    database = Database(f"sqlite+aiosqlite:///{_db_path}")
    await database.migrate()
    accounts = AccountService(Passwords(1), LoginLimiter(5, 20, 900))
    await accounts.register(database, "fuzz-admin", "fuzz-admin-password", role=Role.admin)
    await accounts.register(database, "fuzz-user", "fuzz-user-password")
    await database.dispose()


asyncio.run(_prepare())
app = create_app(make_settings(_workdir, _db_path))
schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
    # /tasks/run is the seed's rates job: it is fuzzed with the rates routes
    path_regex=r"^/(api/v1/)?(auth|users|chat)|^/(api/v1/)?tasks(?!/run$)"
)


def _admin_bearer() -> dict[str, str]:
    """A fresh admin token per case: a fuzzed logout-all must not blind the next cases."""
    token = sqlite_session_token(app, _db_path, "fuzz-admin")
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_auth_and_users_routes_never_fail_on_bad_input(case: schemathesis.Case) -> None:
    response = case.call(headers=_admin_bearer())
    assert response.status_code < 500, (case.method, case.path, response.text)
    body = response.text
    assert "$argon2" not in body and "password_hash" not in body and "Traceback" not in body
