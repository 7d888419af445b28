"""rate-limit hits in the database, so the login and chat limits hold across instances

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 20:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "limit_hits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bucket", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_hits")),
    )
    op.create_index("ix_limit_hits_bucket_key_at", "limit_hits", ["bucket", "key", "at"])
    op.create_index("ix_limit_hits_at", "limit_hits", ["at"])


def downgrade() -> None:
    op.drop_index("ix_limit_hits_at", table_name="limit_hits")
    op.drop_index("ix_limit_hits_bucket_key_at", table_name="limit_hits")
    op.drop_table("limit_hits")
