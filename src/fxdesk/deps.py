"""The app's shared parts, typed: one accessor per `app.state` key, and the `Annotated`
dependencies routes declare. Apart from the composition root (app.py), the request session
(`DbSession` in db.py, which this module imports) and the rates runtime's own dependency
(rates/dependencies.py), nothing else in fxdesk reads `app.state`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends
from starlette.requests import HTTPConnection

from fxdesk.auth.ratelimit import SlidingWindowCounter
from fxdesk.auth.service import AccountService
from fxdesk.auth.tokens import TokenCodec
from fxdesk.caching import Pages
from fxdesk.config import Settings
from fxdesk.db import Database
from fxdesk.realtime.hub import Hub
from fxdesk.users.lookup import UserLookup

T = TypeVar("T")


def settings_of(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


def database_of(conn: HTTPConnection) -> Database:
    database: Database = conn.app.state.database
    return database


def tokens_of(conn: HTTPConnection) -> TokenCodec:
    tokens: TokenCodec = conn.app.state.tokens
    return tokens


def user_lookup_of(conn: HTTPConnection) -> UserLookup:
    lookup: UserLookup = conn.app.state.user_lookup
    return lookup


def accounts_of(conn: HTTPConnection) -> AccountService:
    accounts: AccountService = conn.app.state.accounts
    return accounts


def chat_limiter_of(conn: HTTPConnection) -> SlidingWindowCounter:
    limiter: SlidingWindowCounter = conn.app.state.chat_limiter
    return limiter


def hub_of(conn: HTTPConnection) -> Hub:
    hub: Hub = conn.app.state.hub
    return hub


def pages_of(conn: HTTPConnection) -> Pages:
    pages: Pages = conn.app.state.pages
    return pages


def _dependency(
    accessor: Callable[[HTTPConnection], T],
) -> Callable[[HTTPConnection], Awaitable[T]]:
    """`accessor` as a dependency; async on purpose: FastAPI runs a plain `def` dependency in a
    worker thread."""

    async def dependency(conn: HTTPConnection) -> T:
        return accessor(conn)

    return dependency


SettingsDep = Annotated[Settings, Depends(_dependency(settings_of))]
AccountsDep = Annotated[AccountService, Depends(_dependency(accounts_of))]
ChatLimiterDep = Annotated[SlidingWindowCounter, Depends(_dependency(chat_limiter_of))]
PageCache = Annotated[Pages, Depends(_dependency(pages_of))]
DatabaseDep = Annotated[Database, Depends(_dependency(database_of))]
