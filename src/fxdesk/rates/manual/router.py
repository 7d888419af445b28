"""The /rates/manual routes of the main API: list (any user), create, change, delete (admin).

`fxdesk.rates.router` mounts this router between its fixed /rates/... paths and /rates/{date},
so the routes keep the order they are matched in; tags and common error responses come from
there too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from fxdesk.auth.dependencies import AdminUser, CurrentUser
from fxdesk.db import DbSession
from fxdesk.errors import error_responses
from fxdesk.rates.manual import service
from fxdesk.rates.manual.schemas import ManualRateIn, ManualRateOut, ManualRatePatch
from fxdesk.rates.payloads import manual_payload

router = APIRouter()

ManualId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/rates/manual", response_model=list[ManualRateOut])
async def list_manual(
    user: CurrentUser,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Any:
    rows, _ = await service.list_manual(session, limit, offset)
    return [manual_payload(row) for row in rows]


@router.post("/rates/manual", response_model=ManualRateOut, status_code=201)
async def create_manual(body: ManualRateIn, admin: AdminUser, session: DbSession) -> Any:
    row = await service.create_manual(session, admin, body.code, body.name, body.value)
    return manual_payload(row)


@router.patch(
    "/rates/manual/{rate_id}", response_model=ManualRateOut, responses=error_responses(400, 404)
)
async def update_manual(
    rate_id: ManualId, body: ManualRatePatch, admin: AdminUser, session: DbSession
) -> Any:
    row = await service.update_manual(session, admin, rate_id, body.name, body.value)
    return manual_payload(row)


@router.delete("/rates/manual/{rate_id}", status_code=204, responses=error_responses(404))
async def delete_manual(rate_id: ManualId, admin: AdminUser, session: DbSession) -> Response:
    await service.delete_manual(session, admin, rate_id)
    return Response(status_code=204)
