"""The `fxdesk` command: serve, migrate, user administration, rates fetch/backfill, health check."""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from fxdesk.config import ConfigError, Settings
from fxdesk.users.models import Role

# A crash prints its traceback without locals: they would include settings and their secret.
app = typer.Typer(
    help="fxdesk: live CBR exchange rates, a shared task board and chat.",
    pretty_exceptions_show_locals=False,
)
user_app = typer.Typer(help="Manage user accounts.")
app.add_typer(user_app, name="user")
rates_app = typer.Typer(help="Fetch and backfill the CBR rate tables.")
app.add_typer(rates_app, name="rates")
console = Console(stderr=True)


def _settings() -> Settings:
    try:
        settings = Settings()
        settings.prepare()
    except ConfigError as exc:
        console.print(f"[red]Configuration error:[/] {exc}")
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            problem = f"FXDESK_{'_'.join(loc).upper()}: {error['msg']}"
            field = Settings.model_fields.get(loc[0]) if loc else None
            if field is None or field.repr:  # secrets (repr=False) are never echoed
                problem += f" (got {error['input']!r})"
            console.print(f"[red]Configuration error:[/] {escape(problem)}")
        raise typer.Exit(2) from exc
    return settings


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    reload: bool = typer.Option(False, help="Restart on code changes (development)."),
    demo: bool = typer.Option(False, help="Seed demo accounts and print their passwords once."),
) -> None:
    """Run the HTTP and WebSocket server (migrations are applied first)."""
    import uvicorn

    from fxdesk.serving import SERVER_OPTIONS

    if demo:
        os.environ["FXDESK_DEMO"] = "true"
    _settings()  # fail fast, with a clear message, on a bad configuration
    uvicorn.run(
        "fxdesk.app:app_factory",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        **SERVER_OPTIONS,
    )


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    from fxdesk.db import Database

    settings = _settings()

    async def run() -> None:
        database = Database(settings.resolved_database_url)
        try:
            await database.migrate()
        finally:
            await database.dispose()

    asyncio.run(run())
    console.print("[green]Database is up to date.[/]")


@user_app.command("create")
def user_create(
    username: str = typer.Argument(..., help="Login name (3-32 letters, digits, _ . -)."),
    role: Role = typer.Option(Role.user, help="user, moderator or admin."),
    password: str | None = typer.Option(None, help="Password (8-64 chars); prompted if omitted."),
) -> None:
    """Create an account with the given role."""
    from fxdesk.auth.passwords import Passwords
    from fxdesk.auth.ratelimit import LoginLimiter
    from fxdesk.auth.service import AccountService
    from fxdesk.db import Database
    from fxdesk.errors import AppError
    from fxdesk.users.schemas import PASSWORD_MAX, PASSWORD_MIN, normalize_username

    settings = _settings()
    try:
        username = normalize_username(username)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        console.print(f"[red]Password length must be between {PASSWORD_MIN} and {PASSWORD_MAX}[/]")
        raise typer.Exit(2)

    async def run() -> None:
        database = Database(settings.resolved_database_url)
        accounts = AccountService(Passwords(1), LoginLimiter(1, 1, 1))
        try:
            await database.migrate()
            await accounts.register(database, username, password, role=role)
        finally:
            await database.dispose()

    try:
        asyncio.run(run())
    except AppError as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
    console.print(f"[green]Created {role.value} {username!r}.[/]")


@app.command()
def healthcheck(
    url: str = typer.Option("http://127.0.0.1:8000/health", help="Health endpoint to ask."),
) -> None:
    """Exit 0 when the service answers /health, 1 otherwise (for container health checks)."""
    import httpx

    try:
        response = httpx.get(url, timeout=5)
    except httpx.HTTPError as exc:
        console.print(f"[red]unreachable:[/] {exc}")
        raise typer.Exit(1) from exc
    if response.status_code != 200:
        console.print(f"[red]unhealthy:[/] HTTP {response.status_code}")
        raise typer.Exit(1)
    console.print("[green]healthy[/]")


@rates_app.command("fetch")
def rates_fetch() -> None:
    """Fetch the newest CBR table now and store what changed, as a server's poll would."""
    import uuid

    from fxdesk.db import Database
    from fxdesk.rates.cbr.configured import make_cbr_client
    from fxdesk.rates.scheduler import FetchReport, RatesScheduler

    settings = _settings()

    async def run() -> FetchReport:
        database = Database(settings.resolved_database_url)
        try:
            await database.migrate()
            scheduler = RatesScheduler(
                database, settings, f"cli-{uuid.uuid4().hex}", lambda: make_cbr_client(settings)
            )
            return await scheduler.run_once("cli")
        finally:
            await database.dispose()

    report = asyncio.run(run())
    if report.status != "ok":
        console.print(f"[red]{report.message}[/]")
        raise typer.Exit(1)
    console.print(f"[green]{report.message}[/]")


@rates_app.command("backfill")
def rates_backfill(
    since: datetime = typer.Option(..., formats=["%Y-%m-%d"], help="First day (YYYY-MM-DD)."),
    until: datetime | None = typer.Option(
        None, formats=["%Y-%m-%d"], help="Last day (YYYY-MM-DD); default today in Moscow."
    ),
    pause: float = typer.Option(0.2, min=0, help="Seconds between requests to cbr.ru."),
) -> None:
    """Store every CBR table in force since a day; days already stored are skipped."""
    import uuid

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from fxdesk.db import Database
    from fxdesk.rates.backfill import BackfillReport, backfill
    from fxdesk.rates.cbr.configured import make_cbr_client
    from fxdesk.rates.tables import moscow_today

    settings = _settings()
    first = since.date()
    last = until.date() if until else moscow_today()
    if first > last:
        console.print(f"[red]--since {first} is after the end date {last}[/]")
        raise typer.Exit(2)

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("backfill", total=(last - first).days + 1)

        def advance(day: date, what: str) -> None:
            progress.update(task, advance=1, description=f"{day.isoformat()} {what}")

        async def run() -> BackfillReport:
            database = Database(settings.resolved_database_url)
            try:
                await database.migrate()
                return await backfill(
                    database,
                    settings,
                    lambda: make_cbr_client(settings),
                    first,
                    last,
                    holder=f"cli-{uuid.uuid4().hex}",
                    progress=advance,
                    pause_seconds=pause,
                )
            finally:
                await database.dispose()

        report = asyncio.run(run())
    console.print(
        f"{report.days} days: {report.skipped} already stored, {report.fetched} fetched, "
        f"{report.tables_added} new tables, {len(report.failed)} failed"
    )
    if report.failed:
        console.print(
            "[red]Failed days (run the same command again to retry them):[/] "
            + ", ".join(day.isoformat() for day in report.failed[:20])
        )
        raise typer.Exit(1)


def main() -> None:
    app(prog_name="fxdesk")


if __name__ == "__main__":
    main()
