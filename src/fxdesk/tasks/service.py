"""Changing tasks: permissions, optimistic versions, atomic finish, history and events.

Reads are in `fxdesk.tasks.queries`."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.db import utcnow
from fxdesk.errors import AppError, Conflict, NotFound, PermissionDenied
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import EventType
from fxdesk.tasks.models import Task, TaskHistory, TaskStatus
from fxdesk.tasks.queries import STAFF, TaskNotFound
from fxdesk.tasks.schemas import TaskCreate, TaskOut, TaskUpdate
from fxdesk.users.models import User

EDITABLE = ("title", "description", "priority", "assignee_id", "due_at")


class TitleTaken(Conflict):
    detail = "Task with such name already exists"


class AlreadyFinished(Conflict):
    detail = "Task is already finished"


class NotFinished(Conflict):
    detail = "Task is not finished"


class VersionRequired(AppError):
    status_code = 428
    detail = 'Send the version you edited: If-Match: "<version>" or "version" in the body'


class StaleVersion(AppError):
    """412 carrying the current task, so the client can show what changed."""

    status_code = 412
    detail = "The task was changed by someone else"

    def __init__(self, current: TaskOut) -> None:
        super().__init__()
        self.current = current


def title_key(title: str) -> str:
    return title.casefold()


def task_out(task: Task) -> TaskOut:
    return TaskOut.model_validate(task)


async def _load(session: AsyncSession, task_id: int, *, deleted_ok: bool = False) -> Task:
    task = await session.get(Task, task_id, populate_existing=True)
    if task is None or (task.deleted_at is not None and not deleted_ok):
        raise TaskNotFound()
    return task


async def _record(
    session: AsyncSession,
    task: Task,
    actor: User,
    action: str,
    event: EventType,
    changes: dict[str, list[Any]] | None = None,
) -> TaskOut:
    """History row and outbox event, in the same transaction as the change."""
    changes = changes or {}
    session.add(
        TaskHistory(
            task_id=task.id,
            actor_id=actor.id,
            action=action,
            changes=json.dumps(changes, default=str),
        )
    )
    await session.flush()
    await session.refresh(task)
    out = task_out(task)
    await add_event(
        session, event, {"task": out.model_dump(mode="json"), "changes": changes}, actor=actor
    )
    return out


async def create_task(session: AsyncSession, actor: User, data: TaskCreate) -> TaskOut:
    if data.assignee_id is not None and await session.get(User, data.assignee_id) is None:
        raise NotFound("Assignee not found")
    key = title_key(data.title)
    live = select(Task.id).where(Task.title_key == key, Task.deleted_at.is_(None))
    if await session.scalar(live) is not None:
        raise TitleTaken()
    now = utcnow()
    task = Task(
        title=data.title,
        title_key=key,
        description=data.description,
        priority=data.priority,
        assignee_id=data.assignee_id,
        due_at=data.due_at,
        created_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise TitleTaken() from exc
    return await _record(session, task, actor, "created", EventType.task_created)


def can_edit(actor: User, task: Task) -> bool:
    return actor.role in STAFF or task.created_by_id == actor.id


async def update_task(
    session: AsyncSession,
    actor: User,
    task_id: int,
    data: TaskUpdate,
    expected_version: int | None,
    *,
    require_version: bool = True,
) -> TaskOut:
    task = await _load(session, task_id)
    if not can_edit(actor, task):
        raise PermissionDenied()
    version = expected_version if expected_version is not None else data.version
    if version is None and require_version:
        raise VersionRequired()
    if version is not None and version != task.version:
        raise StaleVersion(task_out(task))
    fields = data.model_dump(exclude_unset=True, exclude={"version"})
    changes: dict[str, list[Any]] = {}
    values: dict[str, Any] = {}
    for name in EDITABLE:
        if name in fields and fields[name] != getattr(task, name):
            changes[name] = [getattr(task, name), fields[name]]
            values[name] = fields[name]
    for required in ("title", "description", "priority"):
        if required in fields and fields[required] is None:
            raise AppError(f"{required} cannot be null", status_code=422)
    if "title" in values:
        values["title_key"] = title_key(values["title"])
        clash = await session.scalar(
            select(Task.id).where(
                Task.title_key == values["title_key"], Task.deleted_at.is_(None), Task.id != task.id
            )
        )
        if clash is not None:
            raise TitleTaken()
    if (
        values.get("assignee_id") is not None
        and await session.get(User, values["assignee_id"]) is None
    ):
        raise NotFound("Assignee not found")
    if not values:
        return task_out(task)
    # The version check is repeated in the UPDATE itself: correct even without a write lock.
    result = await session.execute(
        update(Task)
        .where(Task.id == task.id, Task.version == task.version, Task.deleted_at.is_(None))
        .values(**values, version=Task.version + 1, updated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleVersion(task_out(await _load(session, task_id)))
    return await _record(session, task, actor, "updated", EventType.task_updated, changes)


async def finish_task(session: AsyncSession, actor: User, task_id: int) -> TaskOut:
    """The open→done step: of two concurrent finishers exactly one wins, the other gets 409."""
    now = utcnow()
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.open, Task.deleted_at.is_(None))
        .values(
            status=TaskStatus.done,
            finished_by_id=actor.id,
            finished_at=now,
            updated_at=now,
            version=Task.version + 1,
        )
    )
    task = await _load(session, task_id)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyFinished()
    return await _record(
        session, task, actor, "finished", EventType.task_finished, {"status": ["open", "done"]}
    )


async def reopen_task(session: AsyncSession, actor: User, task_id: int) -> TaskOut:
    if actor.role not in STAFF:
        raise PermissionDenied()
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.done, Task.deleted_at.is_(None))
        .values(
            status=TaskStatus.open,
            finished_by_id=None,
            finished_at=None,
            updated_at=utcnow(),
            version=Task.version + 1,
        )
    )
    task = await _load(session, task_id)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFinished()
    return await _record(
        session, task, actor, "reopened", EventType.task_reopened, {"status": ["done", "open"]}
    )


async def delete_task(session: AsyncSession, actor: User, task_id: int) -> TaskOut:
    if actor.role not in STAFF:
        raise PermissionDenied()
    now = utcnow()
    # Conditional, like finish: of two concurrent deletes exactly one changes the row.
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now, version=Task.version + 1)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise TaskNotFound()
    task = await _load(session, task_id, deleted_ok=True)
    return await _record(session, task, actor, "deleted", EventType.task_deleted)


async def restore_task(session: AsyncSession, actor: User, task_id: int) -> TaskOut:
    if actor.role not in STAFF:
        raise PermissionDenied()
    task = await _load(session, task_id, deleted_ok=True)
    if task.deleted_at is None:
        raise Conflict("Task is not deleted")
    clash = await session.scalar(
        select(Task.id).where(Task.title_key == task.title_key, Task.deleted_at.is_(None))
    )
    if clash is not None:
        raise TitleTaken()
    try:
        result = await session.execute(
            update(Task)
            .where(Task.id == task_id, Task.deleted_at.is_not(None))
            .values(deleted_at=None, updated_at=utcnow(), version=Task.version + 1)
        )
    except IntegrityError:  # a task of the same title came back or was created meanwhile
        raise TitleTaken() from None
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Task is not deleted")  # restored by someone else meanwhile
    task = await _load(session, task_id)
    return await _record(session, task, actor, "restored", EventType.task_restored)
