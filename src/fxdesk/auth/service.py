"""Account operations: register, authenticate with limits, change password, revoke sessions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.auth.passwords import Passwords
from fxdesk.auth.ratelimit import LoginLimiter
from fxdesk.db import utcnow
from fxdesk.errors import AppError, Conflict, NotAuthenticated, TooManyRequests
from fxdesk.logging import get_logger, security_event
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
        self, session: AsyncSession, username: str, password: str, role: Role = Role.user
    ) -> User:
        key = username_key(username)
        if await session.scalar(select(User.id).where(User.username_key == key)) is not None:
            raise UsernameTaken()
        user = User(
            username=username,
            username_key=key,
            password_hash=await self.passwords.hash(password),
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
        self, session: AsyncSession, username: str, password: str, address: str
    ) -> User:
        """The user for these credentials, or one uniform 401; 429 once over a limit."""
        key = username_key(username)
        retry_after = self.limiter.retry_after(key, address)
        if retry_after:
            security_event("login_rate_limited", username=username[:64], address=address)
            raise TooManyRequests(
                "Too many failed logins; try again later",
                headers={"Retry-After": str(retry_after)},
            )
        user = await session.scalar(select(User).where(User.username_key == key))
        if user is None:
            await self.passwords.verify_nobody(password)
            ok = False
        else:
            ok = await self.passwords.verify(password, user.password_hash) and user.is_active
        if not ok or user is None:
            self.limiter.failed(key, address)
            security_event("login_failed", username=username[:64], address=address)
            raise NotAuthenticated(INVALID_CREDENTIALS)
        self.limiter.succeeded(key)
        user.last_login_at = utcnow()
        security_event("login_ok", user_id=user.id, address=address)
        return user

    async def change_password(
        self, session: AsyncSession, user: User, current: str, new: str
    ) -> None:
        if not await self.passwords.verify(current, user.password_hash):
            security_event("password_change_refused", user_id=user.id)
            raise WrongPassword()
        user.password_hash = await self.passwords.hash(new)
        user.token_version += 1
        await session.flush()
        security_event("password_changed", user_id=user.id)

    async def revoke_sessions(self, session: AsyncSession, user: User) -> None:
        user.token_version += 1
        await session.flush()
        security_event("sessions_revoked", user_id=user.id)
