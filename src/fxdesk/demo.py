"""`fxdesk serve --demo`: demo accounts with fresh random passwords, printed once."""

from __future__ import annotations

import secrets

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from fxdesk.auth.service import AccountService
from fxdesk.db import Database
from fxdesk.users.models import Role, User

DEMO_USERS = (
    ("demo-admin", Role.admin),
    ("demo-moderator", Role.moderator),
    ("demo-user", Role.user),
)


async def seed_demo(database: Database, accounts: AccountService) -> None:
    created: list[tuple[str, str, str]] = []
    for username, role in DEMO_USERS:
        async with database.session(write=False) as session:
            if await session.scalar(select(User.id).where(User.username_key == username)):
                continue
        password = secrets.token_urlsafe(12)
        await accounts.register(database, username, password, role=role)
        created.append((username, role.value, password))
    console = Console(stderr=True)
    if not created:
        console.print("[yellow]Demo accounts exist already; their passwords were shown once.[/]")
        return
    table = Table(title="fxdesk demo accounts (shown once)")
    for column in ("username", "role", "password"):
        table.add_column(column)
    for row in created:
        table.add_row(*row)
    console.print(table)
