"""Main API task routes: /api/v1/tasks."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from fxdesk.auth.dependencies import CurrentUser
from fxdesk.caching import etag_response
from fxdesk.db import DbSession
from fxdesk.deps import DatabaseDep, PageCache
from fxdesk.errors import InvalidInput, error_responses
from fxdesk.events.schemas import Channel
from fxdesk.querystring import parse_query, query_parameters
from fxdesk.tasks import queries, service
from fxdesk.tasks.schemas import (
    HistoryEntry,
    TaskCreate,
    TaskOut,
    TaskPage,
    TaskQuery,
    TaskUpdate,
)
from fxdesk.users.schemas import UserPublic

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=error_responses(401, 403, 422))

TaskId = Annotated[int, Path(ge=1, le=2**62)]
_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


def _etag(task: TaskOut) -> str:
    return f'"{task.version}"'


def _with_etag(task: TaskOut, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        task.model_dump(mode="json"), status_code=status_code, headers={"ETag": _etag(task)}
    )


def _parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    match = _IF_MATCH.match(value)
    if match is None:
        raise InvalidInput('If-Match must be a task version such as "3"')
    return int(match.group(1))


@router.get("", response_model=TaskPage, openapi_extra=query_parameters(TaskQuery))
async def list_tasks(
    request: Request, user: CurrentUser, database: DatabaseDep, pages: PageCache
) -> Any:
    """A page of the board; remembered until the next task event (see fxdesk.caching)."""
    query = parse_query(TaskQuery, request)
    filters = queries.TaskFilters(
        query.status, query.created_by, query.finished_by, query.q or None, query.updated_since
    )
    sort, limit, offset = query.sort, query.limit, query.offset

    async def count() -> int:
        async with database.reader() as connection:
            return await queries.count_tasks(connection, filters)

    async def build() -> bytes:
        # the count of a filter is the same for each of its pages: counted once
        total = await pages.part(Channel.tasks, ("count", filters), count)
        async with database.reader() as connection:
            return await queries.task_page(connection, filters, sort, limit, offset, total)

    page = await pages.page(Channel.tasks, ("list", filters, sort, limit, offset), build)
    return etag_response(request, page)


@router.post("", status_code=201, response_model=TaskOut, responses=error_responses(404, 409))
async def create_task(body: TaskCreate, user: CurrentUser, session: DbSession) -> Any:
    return _with_etag(await service.create_task(session, user, body), 201)


@router.get("/{task_id}", response_model=TaskOut, responses=error_responses(404))
async def get_task(
    request: Request, task_id: TaskId, user: CurrentUser, database: DatabaseDep, pages: PageCache
) -> Any:
    """The task; its ETag is its version (what If-Match takes on a change)."""
    sees_deleted = queries.sees_deleted(user)  # who may see what is part of the key

    async def build() -> TaskOut:
        async with database.session(write=False) as session:
            return await queries.get_task(session, user, task_id)

    page = await pages.page(Channel.tasks, ("task", task_id, sees_deleted), build, etag=_etag)
    return etag_response(request, page)


@router.patch(
    "/{task_id}",
    response_model=TaskOut,
    responses={
        **error_responses(404, 409, 428),
        412: {"description": "Stale version; body has `current`"},
    },
)
async def update_task(
    task_id: TaskId,
    body: TaskUpdate,
    user: CurrentUser,
    session: DbSession,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> Any:
    """Edit a task; send the version you saw (If-Match or `version`); a stale one gets 412."""
    try:
        task = await service.update_task(session, user, task_id, body, _parse_if_match(if_match))
    except service.StaleVersion as stale:
        return JSONResponse(
            {"detail": stale.detail, "current": stale.current.model_dump(mode="json")},
            status_code=412,
            headers={"ETag": _etag(stale.current)},
        )
    return _with_etag(task)


@router.delete("/{task_id}", response_model=TaskOut, responses=error_responses(404))
async def delete_task(task_id: TaskId, user: CurrentUser, session: DbSession) -> Any:
    """Soft delete (moderators and admins); restore brings it back."""
    return _with_etag(await service.delete_task(session, user, task_id))


@router.post("/{task_id}/restore", response_model=TaskOut, responses=error_responses(404, 409))
async def restore_task(task_id: TaskId, user: CurrentUser, session: DbSession) -> Any:
    return _with_etag(await service.restore_task(session, user, task_id))


@router.post("/{task_id}/finish", response_model=TaskOut, responses=error_responses(404, 409))
async def finish_task(task_id: TaskId, user: CurrentUser, session: DbSession) -> Any:
    return _with_etag(await service.finish_task(session, user, task_id))


@router.post("/{task_id}/reopen", response_model=TaskOut, responses=error_responses(404, 409))
async def reopen_task(task_id: TaskId, user: CurrentUser, session: DbSession) -> Any:
    return _with_etag(await service.reopen_task(session, user, task_id))


@router.get("/{task_id}/history", response_model=list[HistoryEntry], responses=error_responses(404))
async def task_history(
    request: Request, task_id: TaskId, user: CurrentUser, database: DatabaseDep, pages: PageCache
) -> Any:
    sees_deleted = queries.sees_deleted(user)

    async def build() -> list[Any]:
        async with database.session(write=False) as session:
            rows = await queries.history(session, user, task_id)
            return [
                HistoryEntry(
                    id=row.id,
                    action=row.action,
                    actor=UserPublic.model_validate(row.actor),
                    changes=json.loads(row.changes),
                    at=row.at,
                ).model_dump(mode="json")
                for row in rows
            ]

    page = await pages.page(Channel.tasks, ("history", task_id, sees_deleted), build)
    return etag_response(request, page)
