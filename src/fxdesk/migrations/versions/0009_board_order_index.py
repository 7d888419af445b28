"""the board's default order (newest first, any status) served by an index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00.000000

`GET /api/v1/tasks` without a status filter sorted every live task to find one page (350-520 ms
with 100 000 tasks): `ix_tasks_list_created` starts with the status. `(deleted_at, created_at,
id)` walks the page in order and stops.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_board", "tasks", ["deleted_at", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_board", table_name="tasks")
