"""Server-side sessions: a row per login, checked on every request, ended for good.

A token names its session (`sid`). Ending sessions marks their rows and, in the same
transaction, records a `session_ended` event: every instance's hub hears it from the stream and
closes the sockets those sessions hold (4401). A role change records `access_changed` (4403).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.auth.models import UserSession
from fxdesk.auth.tokens import TokenCodec
from fxdesk.db import Database, utcnow
from fxdesk.errors import NotFound
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import EventType
from fxdesk.logging import security_event
from fxdesk.users.models import User

USER_AGENT_MAX = 256
ADDRESS_MAX = 64
KEEP_ENDED = timedelta(days=7)  # ended and expired rows are deleted after this


class SessionNotFound(NotFound):
    detail = "Session not found"


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who a request or socket speaks for, and through which session until when."""

    user: User
    session_id: str
    expires_at: datetime


async def open_session(
    database: Database, codec: TokenCodec, user: User, *, user_agent: str, address: str
) -> tuple[str, datetime]:
    """Create a session for `user` and return its token and expiry."""
    now = utcnow()
    expires_at = (now + codec.lifetime).replace(microsecond=0)  # `exp` has whole seconds
    session_id = secrets.token_hex(16)
    async with database.session() as session:
        await session.execute(
            delete(UserSession).where(
                UserSession.user_id == user.id, UserSession.expires_at < now - KEEP_ENDED
            )
        )
        session.add(
            UserSession(
                id=session_id,
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
                user_agent=user_agent[:USER_AGENT_MAX],
                address=address[:ADDRESS_MAX],
            )
        )
    return codec.issue(user, session_id, expires_at), expires_at


async def list_sessions(session: AsyncSession, user_id: int) -> list[UserSession]:
    """The user's live sessions, newest first."""
    rows = await session.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.ended_at.is_(None),
            UserSession.expires_at > utcnow(),
        )
        .order_by(UserSession.created_at.desc(), UserSession.id)
    )
    return list(rows)


async def end_sessions(
    session: AsyncSession,
    user_id: int,
    reason: str,
    *,
    only: str | None = None,
    keep: str | None = None,
    actor: User | None = None,
) -> int:
    """End the user's live sessions (just `only`, or all but `keep`); returns how many.

    Runs in the caller's transaction, with the event that closes their sockets everywhere.
    """
    query = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.ended_at.is_(None)
    )
    if only is not None:
        query = query.where(UserSession.id == only)
    if keep is not None:
        query = query.where(UserSession.id != keep)
    result = await session.execute(query.values(ended_at=utcnow(), end_reason=reason))
    ended = int(getattr(result, "rowcount", 0) or 0)
    if ended:
        payload = {
            "user_id": user_id,
            "sessions": [only] if only is not None else None,  # None: every one but `keep`
            "keep": keep,
            "reason": reason,
        }
        await add_event(session, EventType.session_ended, payload, actor=actor)
        security_event("sessions_ended", user_id=user_id, count=ended, reason=reason)
    return ended


async def end_own_session(session: AsyncSession, user: User, session_id: str) -> None:
    """`DELETE /auth/sessions/{id}`: a user ends one of their own live sessions."""
    if not await end_sessions(session, user.id, "ended_by_user", only=session_id, actor=user):
        raise SessionNotFound()


async def access_changed(session: AsyncSession, user: User, actor: User) -> None:
    """Announce a role or state change: the user's sockets reconnect with the new access."""
    payload = {"user_id": user.id, "role": user.role.value, "is_active": user.is_active}
    await add_event(session, EventType.access_changed, payload, actor=actor)
