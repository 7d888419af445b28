"""Each order of the board is read from an index in that order, on both databases.

PostgreSQL did not take `deleted_at IS NULL` as fixing the first column of
`(deleted_at, created_at, id)`, and sorted every live task for each page (25-30 ms with
100 000 tasks). The live-task indexes of migration 0010 serve every sort.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import insert, text

from fxdesk.db import Database
from fxdesk.tasks import queries
from fxdesk.tasks.models import Task, TaskStatus
from fxdesk.tasks.schemas import TaskSort
from fxdesk.users.models import Role, User

INDEXES = {
    TaskSort.created_at_desc: "ix_tasks_live_created",
    TaskSort.created_at: "ix_tasks_live_created",
    TaskSort.updated_at_desc: "ix_tasks_live_updated",
    TaskSort.finished_at: "ix_tasks_live_finished",
}


@pytest.mark.parametrize("sort", list(INDEXES))
async def test_the_page_walks_an_index_in_order(db_url: str, sort: TaskSort) -> None:
    database = Database(db_url)
    try:
        async with database.session() as session:
            await session.execute(
                insert(User).values(
                    id=1, username="u", username_key="u", password_hash="x", role=Role.user
                )
            )
            rows = [
                {"title": f"t{i}", "title_key": f"t{i}", "created_by_id": 1, "version": 1}
                for i in range(2000)
            ]
            await session.execute(insert(Task), rows)
        async with database.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
            statement = queries._page_statement(queries._shape(queries.TaskFilters()), sort)
            bound = statement.params(limit=50, offset=1000)
            sql = str(bound.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
            explain = "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN "
            plan = " ".join(str(row[-1]) for row in await conn.exec_driver_sql(explain + sql))
        assert INDEXES[sort] in plan, plan
        # the ids are cut from the index walk, not from a sort of every live task
        assert "Seq Scan on tasks tasks_1" not in plan, plan  # PostgreSQL: the ids subquery
        assert re.search(r"SCAN tasks(?! USING)", plan) is None, plan  # SQLite
        async with database.session(write=False) as session:
            page = await queries.task_page(
                session, queries.TaskFilters(TaskStatus.open), sort, 5, 0
            )
        body = json.loads(page)
        assert body["total"] == 2000 and len(body["items"]) == 5
    finally:
        await database.dispose()
