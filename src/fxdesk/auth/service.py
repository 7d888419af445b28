"""Account operations: register, authenticate with limits, change password, revoke sessions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.auth.passwords import Passwords
from fxdesk.auth.ratelimit import LoginLimiter
from fxdesk.auth.sessions import end_sessions
from fxdesk.db import Database, utcnow
from fxdesk.errors import AppError, Conflict, NotAuthenticated, TooManyRequests
from fxdesk.logging import get_logger, security_event
from fxdesk.users.confusables import username_skeleton
from fxdesk.users.models import Role, User
from fxdesk.users.schemas import username_key

log = get_logger("fxdesk.auth")

INVALID_CREDENTIALS = "Invalid username or password"


class UsernameTaken(Conflict):
    detail = "User with such name already exists"


class WrongPassword(AppError):
    status_code = 400
    detail = "Current password is wrong"


@dataclass(slots=True)
class AccountService:
    passwords: Passwords
    limiter: LoginLimiter

    async def register(
        self, database: Database, username: str, password: str, role: Role = Role.user
    ) -> User:
        key = username_key(username)
        skeleton = username_skeleton(username)
        # Hash before opening the write transaction: SQLite has one write lock, and nobody
        # should queue behind Argon2.
        password_hash = await self.passwords.hash(password)
        async with database.session() as session:
            # A look-alike of an existing name (a Cyrillic a in admin) is that name taken.
            taken = or_(User.username_key == key, User.username_skeleton == skeleton)
            if await session.scalar(select(User.id).where(taken)):
                raise UsernameTaken()
            user = User(
                username=username,
                username_key=key,
                username_skeleton=skeleton,
                password_hash=password_hash,
                role=role,
            )
            session.add(user)
            try:
                async with session.begin_nested():
                    await session.flush()
            except IntegrityError as exc:  # a concurrent registration won the name
                raise UsernameTaken() from exc
        log.info("user_registered", user_id=user.id, username=user.username, role=role.value)
        return user

    async def authenticate(
        self, database: Database, username: str, password: str, address: str
    ) -> User:
        """The user for these credentials, or one uniform 401; 429 once over a limit."""
        key = username_key(username)
        retry_after = await self.limiter.retry_after(database, key, address)
        if retry_after:
            security_event("login_rate_limited", username=username[:64], address=address)
            raise TooManyRequests(
                "Too many failed logins; try again later",
                headers={"Retry-After": str(retry_after)},
            )
        async with database.session(write=False) as session:
            user = await session.scalar(select(User).where(User.username_key == key))
        if user is None:
            await self.passwords.verify_nobody(password)
            ok = False
        else:
            ok = await self.passwords.verify(password, user.password_hash) and user.is_active
        if not ok or user is None:
            await self.limiter.failed(database, key, address)
            security_event("login_failed", username=username[:64], address=address)
            raise NotAuthenticated(INVALID_CREDENTIALS)
        await self.limiter.succeeded(database, key, address)
        async with database.session() as session:
            await session.execute(
                update(User).where(User.id == user.id).values(last_login_at=utcnow())
            )
        security_event("login_ok", user_id=user.id, address=address)
        return user

    async def change_password(
        self, database: Database, user: User, session_id: str, current: str, new: str
    ) -> User:
        """Verify and hash with no transaction open; ends every session but `session_id`."""
        if not await self.passwords.verify(current, user.password_hash):
            security_event("password_change_refused", user_id=user.id)
            raise WrongPassword()
        new_hash = await self.passwords.hash(new)
        async with database.session() as session:
            stored = await session.get(User, user.id)
            if stored is None or not stored.is_active:
                raise NotAuthenticated("Invalid or expired session")
            stored.password_hash = new_hash
            await end_sessions(session, user.id, "password_changed", keep=session_id, actor=user)
        security_event("password_changed", user_id=user.id)
        return stored

    async def revoke_sessions(self, session: AsyncSession, user: User) -> None:
        """Logout everywhere: every session of the user ends, this one included."""
        await session.execute(
            update(User).where(User.id == user.id).values(token_version=User.token_version + 1)
        )
        await end_sessions(session, user.id, "logout_all", actor=user)
        security_event("sessions_revoked", user_id=user.id)
