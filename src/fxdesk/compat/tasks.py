"""Seed-compatible task routes and the plain-text /tasks/general_chat, over the same services."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel, ConfigDict, Field

from fxdesk.auth.dependencies import CurrentUser
from fxdesk.auth.sessions import Authenticated
from fxdesk.db import Database, DbSession
from fxdesk.deps import database_of
from fxdesk.errors import AppError, BadRequest, error_responses
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import Channel, EventType
from fxdesk.logging import get_logger
from fxdesk.realtime.router import as_user, hub_client, post_chat, receive_loop
from fxdesk.tasks import service
from fxdesk.tasks.schemas import Description, TaskCreate, TaskOut, TaskUpdate, Title
from fxdesk.users.models import User

router = APIRouter(prefix="/tasks", tags=["seed"], responses=error_responses(401, 403, 404, 422))
log = get_logger("fxdesk.compat.chat")

SeedId = Annotated[int, Query(alias="id", ge=1, le=2**62)]
VERBS = {
    EventType.task_created.value: "created",
    EventType.task_updated.value: "updated",
    EventType.task_finished.value: "finished",
    EventType.task_deleted.value: "deleted",
}


class SeedTask(BaseModel):
    id: int
    title: str
    description: str
    created_by: str
    finished_by: str | None
    date_of_start: datetime
    date_of_finish: datetime | None


class SeedTaskCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: Title
    description: Description = ""


class SeedTaskUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: Title | None = None
    description: Description | None = Field(default=None)


def seed_task(task: TaskOut) -> SeedTask:
    return SeedTask(
        id=task.id,
        title=task.title,
        description=task.description,
        created_by=task.created_by.username,
        finished_by=task.finished_by.username if task.finished_by else None,
        date_of_start=task.created_at,
        date_of_finish=task.finished_at,
    )


@router.post("/create_task", response_model=SeedTask, responses=error_responses(409))
async def create_task(body: SeedTaskCreate, user: CurrentUser, session: DbSession) -> Any:
    data = TaskCreate(title=body.title, description=body.description)
    return seed_task(await service.create_task(session, user, data))


@router.delete("/delete_task", response_model=SeedTask)
async def delete_task(task_id: SeedId, user: CurrentUser, session: DbSession) -> Any:
    return seed_task(await service.delete_task(session, user, task_id))


@router.put("/update_task", response_model=SeedTask, responses=error_responses(400, 409))
async def update_task(
    task_id: SeedId, user: CurrentUser, session: DbSession, body: SeedTaskUpdate | None = None
) -> Any:
    """No body at all (as the seed's own client sends it), `null` or `{}`: the seed's 400."""
    changes = body.model_dump(exclude_none=True) if body is not None else {}
    if not changes:
        raise BadRequest("You must provide at least one parameter")
    # The seed had no versions: its clients edit last-writer-wins, as they always did.
    task = await service.update_task(
        session, user, task_id, TaskUpdate(**changes), None, require_version=False
    )
    return seed_task(task)


@router.put("/finish_task", response_model=SeedTask, responses=error_responses(409))
async def finish_task(task_id: SeedId, user: CurrentUser, session: DbSession) -> Any:
    return seed_task(await service.finish_task(session, user, task_id))


def seed_line(frame: str) -> str | None:
    """An event envelope as the seed's chat line, or None for what the seed never showed."""
    try:
        event: dict[str, Any] = json.loads(frame)
    except ValueError:
        return None
    kind = event.get("event")
    actor = (event.get("actor") or {}).get("username", "someone")
    if kind == EventType.chat_message.value:
        return f"{event['author']['username']}: {event['text']}"
    if kind == EventType.user_joined.value:
        return f"{event['user']['username']} has joined the general chat!"
    if kind == EventType.user_left.value:
        return f"{event['user']['username']} has left the general chat!"
    if kind in VERBS:
        return f'{actor} {VERBS[kind]} the task - "{event["task"]["title"]}"!'
    return None


async def _announce(database: Database, user: User, event: EventType) -> None:
    async with database.session() as session:
        payload = {"user": {"id": user.id, "username": user.username}}
        await add_event(session, event, payload, actor=user)


async def general_chat(websocket: WebSocket, auth: Authenticated) -> None:
    user = auth.user
    database: Database = database_of(websocket)
    channels = frozenset({Channel.chat, Channel.tasks})
    async with hub_client(
        websocket, auth, "general-chat", channels=channels, transform=seed_line
    ) as client:
        await _announce(database, user, EventType.user_joined)

        async def on_text(text: str) -> None:
            try:
                await post_chat(websocket.app, await as_user(websocket, auth), text)
            except AppError as exc:
                await websocket.send_text(f"Error: {exc.detail}")

        try:
            await receive_loop(websocket, client, on_text)
        finally:
            with contextlib.suppress(Exception):
                await _announce(database, user, EventType.user_left)
