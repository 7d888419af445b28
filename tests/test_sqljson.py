"""A page of tasks written as JSON by the database is, byte for byte, what pydantic writes.

The board's pages come from SQL (fxdesk.sqljson); a task alone, the events and the OpenAPI
schema come from TaskOut. Both databases are held to TaskOut's bytes for text that needs
escaping (quotes, backslashes, every control character, non-BMP and line-separator
characters), datetimes with and without a fraction, absent and present people, and every sort,
filter and page cut; the page joins its rows in the order of its ids.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from fxdesk.db import Database
from fxdesk.tasks import queries
from fxdesk.tasks.models import Priority, Task, TaskStatus
from fxdesk.tasks.schemas import TaskOut, TaskSort
from fxdesk.users.models import Role, User

TEXTS = [
    "plain",
    "",
    'a quote " and a backslash \\ and \\" both',
    "".join(chr(code) for code in range(1, 32)),
    "\x7f\u2028\u2029\ufeff",
    "é ü ß e\u0301 — 😀 \U0001d518 中文",
    "it's; DROP TABLE tasks; --",
    '</script>{"a":1} [1,2] null',
    "line\nbreak\ttab\r\n",
]
START = datetime(2026, 1, 31, 10, 0, 0, tzinfo=UTC)
FRACTIONS = [0, 1, 999_999, 123_000, 500_000]


def _tasks() -> list[dict[str, Any]]:
    rows = []
    for index in range(30):
        text = TEXTS[index % len(TEXTS)]
        # some created together (the id breaks the tie), fractions of every kind
        created = START + timedelta(
            seconds=index // 3, microseconds=FRACTIONS[index % len(FRACTIONS)]
        )
        done = index % 4 == 1
        rows.append(
            {
                "id": index + 1,
                "title": f"{text[:150]} {index}",
                "title_key": f"{text[:150].casefold()} {index}",
                "description": TEXTS[-1 - index % len(TEXTS)],
                "status": TaskStatus.done if done else TaskStatus.open,
                "priority": list(Priority)[index % len(Priority)],
                "assignee_id": 2 if index % 3 == 0 else None,
                "due_at": created + timedelta(days=3) if index % 2 else None,
                "created_by_id": 1 + index % 2,
                "created_at": created,
                "updated_at": created + timedelta(minutes=index % 5),
                "finished_by_id": 2 if done else None,
                "finished_at": created + timedelta(hours=1) if done else None,
                "version": 1 + index % 7,
                "deleted_at": created + timedelta(days=1) if index % 9 == 4 else None,
            }
        )
    return rows


FILTERS = [
    queries.TaskFilters(),
    queries.TaskFilters(status=TaskStatus.done),
    queries.TaskFilters(include_deleted=True),
    queries.TaskFilters(q="quote"),
    queries.TaskFilters(created_by=2, status=TaskStatus.open),
]
CUTS = [(50, 0), (3, 2), (7, 7), (5, 1000)]


@pytest.mark.parametrize("sort", list(TaskSort))
async def test_a_page_is_taskout_json_byte_for_byte(db_url: str, sort: TaskSort) -> None:
    database = Database(db_url)
    try:
        async with database.session() as session:
            for user_id, name in ((1, "ann"), (2, '\u0431\u043e"\u0431\\')):
                await session.execute(
                    insert(User).values(
                        id=user_id,
                        username=name,
                        username_key=name,
                        password_hash="x",
                        role=Role.user,
                    )
                )
            await session.execute(insert(Task), _tasks())
        staff = User(id=9, username="staff", role=Role.admin)
        checked = 0
        async with database.session(write=False) as session:
            for filters in FILTERS:
                shape, parameters = queries._shape(filters), queries._parameters(filters)
                for limit, offset in CUTS:
                    cut = parameters | {"limit": limit, "offset": offset}
                    ids = (await session.scalars(queries._ids_statement(shape, sort), cut)).all()
                    items = [
                        (await queries.get_task(session, staff, task_id)).model_dump(mode="json")
                        for task_id in ids
                    ]
                    total = await queries.count_tasks(session, filters)
                    body = await queries.task_page(session, filters, sort, limit, offset)
                    expected = {"items": items, "total": total, "limit": limit, "offset": offset}
                    assert json.loads(body) == expected
                    # the very bytes TaskOut writes, so a client sees one encoding everywhere
                    assert body == _compact(expected)
                    checked += len(ids)
        assert checked > 60  # the cuts held rows, not only empty pages
    finally:
        await database.dispose()


def _compact(page: dict[str, Any]) -> bytes:
    items = ",".join(TaskOut.model_validate(item).model_dump_json() for item in page["items"])
    rest = f'"total":{page["total"]},"limit":{page["limit"]},"offset":{page["offset"]}'
    return f'{{"items":[{items}],{rest}}}'.encode()
