"""Administration of accounts: listing, role changes, deactivation."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.auth.sessions import access_changed, end_sessions
from fxdesk.errors import BadRequest, NotFound
from fxdesk.logging import security_event
from fxdesk.users.models import Role, User
from fxdesk.users.schemas import UserUpdate


class UserNotFound(NotFound):
    detail = "User not found"


async def list_users(session: AsyncSession, limit: int, offset: int) -> tuple[list[User], int]:
    total = await session.scalar(select(func.count()).select_from(User)) or 0
    rows = await session.scalars(select(User).order_by(User.id).limit(limit).offset(offset))
    return list(rows), total


async def update_user(session: AsyncSession, actor: User, user_id: int, change: UserUpdate) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    if user.id == actor.id and (
        (change.role is not None and change.role != Role.admin) or change.is_active is False
    ):
        # An admin locking themselves out could leave the desk with no admin at all.
        raise BadRequest("Admins cannot demote or deactivate themselves")
    changed = False
    if change.role is not None and change.role != user.role:
        security_event("role_changed", user_id=user.id, by=actor.id, role=change.role.value)
        user.role = change.role
        changed = True
    if change.is_active is not None and change.is_active != user.is_active:
        user.is_active = change.is_active
        if not change.is_active:
            user.token_version += 1  # deactivation ends every session at once
            await end_sessions(session, user.id, "deactivated", actor=actor)
        security_event("active_changed", user_id=user.id, by=actor.id, active=change.is_active)
        changed = True
    await session.flush()
    if changed:
        await access_changed(session, user, actor)
    return user
