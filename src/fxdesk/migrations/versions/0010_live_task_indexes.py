"""the board's orders served by partial indexes over live tasks, on PostgreSQL as on SQLite

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:30:00.000000

`(deleted_at, created_at, id)` gave SQLite the board's order, but PostgreSQL does not take
`deleted_at IS NULL` as fixing the index's first column, so it sorted every live task for each
page (25-30 ms with 100 000 tasks). Indexes over the live tasks only (`WHERE deleted_at IS
NULL`) give both databases each sort of the board in index order, with `id` as the tie-break
the queries use.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")
NEW = {
    "ix_tasks_live_created": ["created_at", "id"],
    "ix_tasks_live_status": ["status", "created_at", "id"],
    "ix_tasks_live_updated": ["updated_at", "id"],
    "ix_tasks_live_finished": ["finished_at", "id"],
}
OLD = {
    "ix_tasks_board": ["deleted_at", "created_at", "id"],
    "ix_tasks_list_created": ["deleted_at", "status", "created_at"],
    "ix_tasks_list_updated": ["deleted_at", "updated_at"],
    "ix_tasks_list_finished": ["deleted_at", "finished_at"],
}


def upgrade() -> None:
    for name, columns in NEW.items():
        op.create_index(name, "tasks", columns, sqlite_where=LIVE, postgresql_where=LIVE)
    for name in OLD:
        op.drop_index(name, table_name="tasks")


def downgrade() -> None:
    for name, columns in OLD.items():
        op.create_index(name, "tasks", columns)
    for name in NEW:
        op.drop_index(name, table_name="tasks")
