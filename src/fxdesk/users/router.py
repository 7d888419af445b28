"""Main API user administration: /api/v1/users (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from fxdesk.auth.dependencies import AdminUser
from fxdesk.db import DbSession
from fxdesk.errors import error_responses
from fxdesk.users import service
from fxdesk.users.schemas import UserOut, UserPage, UserUpdate

router = APIRouter(prefix="/users", tags=["users"], responses=error_responses(401, 403, 422))


@router.get("", response_model=UserPage)
async def list_users(
    admin: AdminUser,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    users, total = await service.list_users(session, limit, offset)
    return UserPage(
        items=[UserOut.model_validate(u) for u in users], total=total, limit=limit, offset=offset
    )


@router.patch("/{user_id}", response_model=UserOut, responses=error_responses(400, 404))
async def update_user(
    user_id: Annotated[int, Path(ge=1, le=2**62)],
    change: UserUpdate,
    admin: AdminUser,
    session: DbSession,
) -> Any:
    return await service.update_user(session, admin, user_id, change)
