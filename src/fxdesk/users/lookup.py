"""The per-request session check: one indexed join, and what every instance remembers of it.

Every authenticated request needs its session and its user: the session must not have ended,
and the role and the token version must be the ones in the database now. The read is one join
(`user_sessions` to `users` by the session's primary key). A round trip to the database costs
far more than the rest of a small request, so each instance keeps what it last read of a
session, and forgets it:
- at once, when this instance commits a session end or an access change (before the response
  that reports it goes out): a logout is refused on its instance with the next request;
- as soon as the events of such a change reach this instance from another one (milliseconds,
  on the `access` channel every instance consumes);
- after `MAX_AGE_SECONDS` in any case, and at once while the event path is down or recovering
  (then every request reads the database): no instance lets a read through for an ended
  session, a deactivated account or an old role for longer than that, the bound sockets have.
What changes anything reads afresh (`fresh=True`): a write request, a socket's handshake and
every action a socket takes for its user; a write costs a transaction anyway.
A read that was under way when something was forgotten is used for its request but not kept.

What a request gets is a detached `User`: services use its id, name and role; what changes a
user loads it in the request's own session. The same instance answers the requests of one
session while it is remembered, so it must be treated as read-only (it always was).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

from sqlalchemy import bindparam, select, update

from fxdesk.auth.models import UserSession
from fxdesk.caching import CoherentCache
from fxdesk.db import Database
from fxdesk.events.consumer import EventConsumer
from fxdesk.events.schemas import Channel
from fxdesk.logging import get_logger
from fxdesk.tasking import stop_task
from fxdesk.users.models import User

SEEN_EVERY_SECONDS = 60.0  # how stale a session's `last_seen_at` may get
MAX_AGE_SECONDS = 1.0  # how long a session read is used without reading it again
KEEP = 4096  # sessions remembered (then all are forgotten at once; rare)

log = get_logger("fxdesk.users.lookup")


class UserLookup:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.view = CoherentCache[User | None]({Channel.access}, max_age=MAX_AGE_SECONDS, size=KEEP)
        # session id -> when this process last recorded it as seen; the new ones wait in
        # `_unsaved` for `save_seen`, so a request never writes.
        self._seen: dict[str, float] = {}
        self._unsaved: dict[str, datetime] = {}
        self._saver: asyncio.Task[None] | None = None

    async def for_session(self, session_id: str, *, fresh: bool = False) -> User | None:
        """The user of a session that has not ended, or None; `fresh` reads the database even
        when this instance remembers the session."""
        return await self.view.get(session_id, lambda: self._read(session_id), fresh=fresh)

    async def _read(self, session_id: str) -> User | None:
        query = (
            select(User)
            .join(UserSession, UserSession.user_id == User.id)
            .where(UserSession.id == session_id, UserSession.ended_at.is_(None))
        )
        async with self.database.session(write=False) as session:
            user = (await session.execute(query)).scalar_one_or_none()
            if user is not None:
                session.expunge(user)
        return user

    def seen(self, session_id: str) -> None:
        """Note a request of this session; stored by the next `save_seen`, once a minute."""
        now = time.time()
        if now - self._seen.get(session_id, 0.0) < SEEN_EVERY_SECONDS:
            return
        if len(self._seen) >= KEEP:
            self._seen.clear()
        self._seen[session_id] = now
        self._unsaved[session_id] = datetime.fromtimestamp(now, UTC)

    async def save_seen(self) -> None:
        """Write the sessions' `last_seen_at` noted since the last call, in one statement."""
        if not self._unsaved:
            return
        batch, self._unsaved = self._unsaved, {}
        statement = (
            update(UserSession)
            .where(UserSession.id == bindparam("sid"))
            .values(last_seen_at=bindparam("seen"))
        )
        async with self.database.engine.begin() as connection:
            await connection.execute(
                statement, [{"sid": sid, "seen": seen} for sid, seen in batch.items()]
            )

    def start(self, events: EventConsumer, every: float = SEEN_EVERY_SECONDS / 2) -> None:
        """Remember session reads while `events` is live; save the noted `last_seen_at`
        values every `every` seconds until `close`."""
        self.view.follow(self.database, events)

        async def save_forever() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    await self.save_seen()
                except Exception as exc:  # a busy or unreachable database: next round
                    log.warning("session_seen_not_saved", error=str(exc) or type(exc).__name__)

        self._saver = asyncio.get_running_loop().create_task(save_forever())

    async def close(self) -> None:
        self.view.unfollow()
        await stop_task(self._saver)
        self._saver = None
        with contextlib.suppress(Exception):
            await self.save_seen()
