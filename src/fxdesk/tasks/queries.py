"""Reading the board: a task, a page of tasks, their count and history.

A read is one statement: the columns a response needs and its people, turned straight into
the response (no ORM objects to track, identity-map or refresh). A page cuts its ids first in
the subquery (an index walk in order), so only the page's rows are read and written as JSON.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fxdesk import sqljson
from fxdesk.errors import NotFound
from fxdesk.tasks.models import Task, TaskHistory, TaskStatus
from fxdesk.tasks.schemas import TaskOut, TaskSort
from fxdesk.users.models import Role, User

STAFF = (Role.moderator, Role.admin)


class TaskNotFound(NotFound):
    detail = "Such Task does not exist"


@dataclass(frozen=True, slots=True)
class TaskFilters:
    status: TaskStatus | None = None
    created_by: int | None = None
    finished_by: int | None = None
    q: str | None = None
    updated_since: datetime | None = None
    include_deleted: bool = False


def sees_deleted(actor: User) -> bool:
    """Deleted tasks are the staff's (who may restore them): to anyone else they do not exist,
    by any route (the task, its history)."""
    return actor.role in STAFF


# Core columns, not ORM attributes: the rows are read as rows (no ORM loading step).
_tasks = Task.__table__
_creator, _finisher, _assignee = (User.__table__.alias(name) for name in ("cb", "fb", "asg"))
_FIELDS = (
    "id",
    "title",
    "description",
    "status",
    "priority",
    "due_at",
    "created_at",
    "updated_at",
    "finished_at",
    "version",
    "deleted_at",
)
_COLUMNS = (
    *(_tasks.c[name] for name in _FIELDS),
    _creator.c.id,
    _creator.c.username,
    _finisher.c.id,
    _finisher.c.username,
    _assignee.c.id,
    _assignee.c.username,
)
_PEOPLE = len(_FIELDS)


def _joined(source: Any) -> Any:
    """The tasks in `source` (the table, or a page of its ids) with their people."""
    joined: Any = _tasks if source is None else _tasks.join(source, source.c.id == _tasks.c.id)
    return (
        joined.join(_creator, _creator.c.id == _tasks.c.created_by_id)
        .outerjoin(_finisher, _finisher.c.id == _tasks.c.finished_by_id)
        .outerjoin(_assignee, _assignee.c.id == _tasks.c.assignee_id)
    )


_people = User.__table__.alias("person")


def _person_json(user_id: ColumnElement[Any]) -> ColumnElement[str]:
    """The user `user_id` as UserPublic's JSON, NULL for NULL: a subquery by primary key,
    which PostgreSQL plans far faster than a page joined to three aliases of users."""
    c = _people.c
    person = sqljson.json_object([("id", c.id), ("username", c.username)])
    return sqljson.embedded_json(select(person).where(c.id == user_id).scalar_subquery())


def _task_json() -> ColumnElement[str]:
    """A task as TaskOut's JSON, written by the database (its fields in TaskOut's order)."""
    c = _tasks.c
    time = sqljson.utc_text
    return sqljson.json_object(
        [
            ("id", c.id),
            ("title", c.title),
            ("description", c.description),
            ("status", c.status),
            ("priority", c.priority),
            ("assignee", _person_json(c.assignee_id)),
            ("due_at", time(c.due_at)),
            ("created_by", _person_json(c.created_by_id)),
            ("created_at", time(c.created_at)),
            ("updated_at", time(c.updated_at)),
            ("finished_by", _person_json(c.finished_by_id)),
            ("finished_at", time(c.finished_at)),
            ("version", c.version),
            ("deleted_at", time(c.deleted_at)),
        ]
    )


def _person(user_id: int | None, username: str | None) -> dict[str, Any] | None:
    return None if user_id is None else {"id": user_id, "username": username}


def _as_dict(row: Row[Any]) -> dict[str, Any]:
    values = dict(zip(_FIELDS, row, strict=False))
    people = row[_PEOPLE:]
    values["created_by"] = _person(people[0], people[1])
    values["finished_by"] = _person(people[2], people[3])
    values["assignee"] = _person(people[4], people[5])
    return values


async def get_task(session: AsyncSession, actor: User, task_id: int) -> TaskOut:
    statement = select(*_COLUMNS).select_from(_joined(None)).where(_tasks.c.id == task_id)
    row = (await session.execute(statement)).first()
    if row is None or (row.deleted_at is not None and not sees_deleted(actor)):
        raise TaskNotFound()
    return TaskOut.model_validate(_as_dict(row))


_SORT_COLUMNS = {
    "created_at": _tasks.c.created_at,
    "updated_at": _tasks.c.updated_at,
    "finished_at": _tasks.c.finished_at,
    "title": _tasks.c.title_key,
}


def _shape(filters: TaskFilters) -> tuple[object, ...]:
    """Which filters are set (and the status asked): the statement's shape; the other
    filters' values are its parameters."""
    return (
        filters.include_deleted,
        filters.status,
        filters.created_by is not None,
        filters.finished_by is not None,
        filters.updated_since is not None,
        bool(filters.q),
    )


def _parameters(filters: TaskFilters) -> dict[str, Any]:
    values = {
        "status": filters.status,
        "created_by": filters.created_by,
        "finished_by": filters.finished_by,
        "updated_since": filters.updated_since,
    }
    parameters: dict[str, Any] = {
        name: value for name, value in values.items() if value is not None
    }
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parameters["pattern"] = f"%{escaped}%"
    return parameters


def _conditions(shape: tuple[object, ...]) -> list[ColumnElement[bool]]:
    include_deleted, status, created_by, finished_by, updated_since, q = shape
    c = _tasks.c
    conditions: list[ColumnElement[bool]] = []
    if not include_deleted:
        conditions.append(c.deleted_at.is_(None))
    if status:
        conditions.append(c.status == bindparam("status"))
    if created_by:
        conditions.append(c.created_by_id == bindparam("created_by"))
    if finished_by:
        conditions.append(c.finished_by_id == bindparam("finished_by"))
    if updated_since:
        conditions.append(c.updated_at >= bindparam("updated_since"))
    if q:
        pattern: BindParameter[str] = bindparam("pattern", type_=String)
        conditions.append(
            or_(c.title.ilike(pattern, escape="\\"), c.description.ilike(pattern, escape="\\"))
        )
    return conditions


# Built once per shape and order, run with the request's values: building a statement of
# this size costs more than running it.
@functools.lru_cache(maxsize=128)
def _count_statement(shape: tuple[object, ...]) -> Select[Any]:
    return select(func.count()).select_from(_tasks).where(*_conditions(shape))


def _order(sort: TaskSort) -> list[ColumnElement[Any]]:
    column = _SORT_COLUMNS[sort.value.lstrip("-")]
    if sort.value.startswith("-"):
        return [column.desc(), _tasks.c.id.desc()]
    return [column, _tasks.c.id]


_BY_FINISH = frozenset({TaskSort.finished_at, TaskSort.finished_at_desc})


@functools.lru_cache(maxsize=128)
def _ids_statement(shape: tuple[object, ...], sort: TaskSort) -> Select[Any]:
    """The ids of a page, in order: an index walk."""
    conditions = _conditions(shape)
    status = shape[1]
    if status is not None and sort in _BY_FINISH:
        # A task is done exactly when it has a finish time (finish_task and reopen_task write
        # both). Said here, it lets either database start at its status's end of the finish
        # index; else a page of open tasks in one order (done ones in the other) walked past
        # every task of the other status first: 5-12 ms with 100 000 tasks.
        finished = _tasks.c.finished_at
        conditions.append(
            finished.is_not(None) if status == TaskStatus.done else finished.is_(None)
        )
    return (
        select(_tasks.c.id)
        .where(*conditions)
        .order_by(*_order(sort))
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


@functools.lru_cache(maxsize=128)
def _page_statement(shape: tuple[object, ...], sort: TaskSort) -> Select[Any]:
    """The page's items as one JSON text (NULL for an empty page): only the page's ids are
    joined and written, and joined in the page's order."""
    ids = _ids_statement(shape, sort).subquery()
    items = sqljson.joined_json(_task_json()).over(order_by=_order(sort), rows=(None, None))
    return select(items).select_from(_tasks.join(ids, ids.c.id == _tasks.c.id)).limit(1)


async def count_tasks(session: AsyncConnection | AsyncSession, filters: TaskFilters) -> int:
    """How many tasks match `filters` (whatever page is asked)."""
    count = await session.scalar(_count_statement(_shape(filters)), _parameters(filters))
    return count or 0


async def task_page(
    session: AsyncConnection | AsyncSession,
    filters: TaskFilters,
    sort: TaskSort,
    limit: int,
    offset: int,
    total: int | None = None,
) -> bytes:
    """A page of the tasks matching `filters`, with how many match (`total` if known), as
    TaskPage's JSON."""
    if total is None:
        total = await count_tasks(session, filters)
    parameters = _parameters(filters) | {"limit": limit, "offset": offset}
    items = await session.scalar(_page_statement(_shape(filters), sort), parameters)
    return (
        f'{{"items":[{items or ""}],"total":{total},"limit":{limit},"offset":{offset}}}'
    ).encode()


async def history(session: AsyncSession, actor: User, task_id: int) -> list[TaskHistory]:
    deleted_at = select(_tasks.c.deleted_at).where(_tasks.c.id == task_id)
    found = (await session.execute(deleted_at)).first()
    if found is None or (found.deleted_at is not None and not sees_deleted(actor)):
        raise TaskNotFound()
    rows = await session.scalars(
        select(TaskHistory).where(TaskHistory.task_id == task_id).order_by(TaskHistory.id)
    )
    return list(rows)
