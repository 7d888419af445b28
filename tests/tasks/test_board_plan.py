"""Each order of the board is read from an index in that order, on both databases.

PostgreSQL did not take `deleted_at IS NULL` as fixing the first column of
`(deleted_at, created_at, id)`, and sorted every live task for each page (25-30 ms with
100 000 tasks). The live-task indexes of migration 0010 serve every sort.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from fxdesk.db import Database
from fxdesk.tasks import queries
from fxdesk.tasks.models import Task, TaskStatus
from fxdesk.tasks.schemas import TaskSort
from fxdesk.users.models import Role, User

ALL, OPEN, DONE = (queries.TaskFilters(status) for status in (None, *TaskStatus))
CASES = [
    (ALL, TaskSort.created_at_desc, "ix_tasks_live_created"),
    (ALL, TaskSort.created_at, "ix_tasks_live_created"),
    (ALL, TaskSort.updated_at_desc, "ix_tasks_live_updated"),
    (ALL, TaskSort.finished_at, "ix_tasks_live_finished"),
    # open tasks have no finish time: their NULLs sit at one end of ix_tasks_live_finished
    (OPEN, TaskSort.finished_at, "ix_tasks_live_finished"),
    (OPEN, TaskSort.finished_at_desc, "ix_tasks_live_finished"),
    (DONE, TaskSort.finished_at, "ix_tasks_live_finished"),
    (DONE, TaskSort.finished_at_desc, "ix_tasks_live_finished"),
]


@pytest.mark.parametrize(("filters", "sort", "index"), CASES)
async def test_the_page_walks_an_index_in_order(
    db_url: str, filters: queries.TaskFilters, sort: TaskSort, index: str
) -> None:
    database = Database(db_url)
    try:
        async with database.session() as session:
            await session.execute(
                insert(User).values(
                    id=1, username="u", username_key="u", password_hash="x", role=Role.user
                )
            )
            done = datetime(2026, 1, 1, tzinfo=UTC)
            rows = [
                {"title": f"t{i}", "title_key": f"t{i}", "created_by_id": 1, "version": 1}
                | (
                    {"status": TaskStatus.done, "finished_at": done + timedelta(minutes=i)}
                    if i % 3 == 0
                    else {}
                )
                for i in range(3000)
            ]
            await session.execute(insert(Task), rows)
        async with database.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
            if not database.is_sqlite:
                # 3000 rows are few enough for PostgreSQL to read them all and sort: ask for
                # the plan it makes when that costs what it does with 100 000
                await conn.exec_driver_sql("SET enable_seqscan = off")
            statement = queries._page_statement(queries._shape(filters), sort)
            bound = statement.params(queries._parameters(filters) | {"limit": 50, "offset": 500})
            sql = str(bound.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
            explain = "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN "
            plan = " ".join(str(row[-1]) for row in await conn.exec_driver_sql(explain + sql))
        assert re.search(rf"\b{index}\b", plan), plan
        if filters.status is not None and sort in (TaskSort.finished_at, TaskSort.finished_at_desc):
            # the walk starts at the status's end of the finish index
            # (PostgreSQL "Index Cond: (finished_at IS NULL)", SQLite "(finished_at=?)")
            assert re.search(r"finished_at( IS (NOT )?NULL\)|[=>]\?\))", plan), plan
        # the ids are cut from the index walk, not from a sort of every live task
        assert "Seq Scan on tasks tasks_1" not in plan, plan  # PostgreSQL: the ids subquery
        assert re.search(r"SCAN tasks(?! USING)", plan) is None, plan  # SQLite
        async with database.session(write=False) as session:
            page = json.loads(await queries.task_page(session, filters, sort, 5, 0))
        assert page["total"] == {ALL: 3000, OPEN: 2000, DONE: 1000}[filters]
        assert len(page["items"]) == 5
    finally:
        await database.dispose()
