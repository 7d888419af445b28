"""event seq given at publish time, and the counter it comes from

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 13:00:00.000000

An outbox row's id is given at insert time, and on PostgreSQL transactions do not commit in
insert order: a lower id can become visible after a higher one was published. The relay now
gives each row its `seq` when it takes it for publishing, from one counter, so seq follows
publish order. Rows already published keep their id as their seq.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_outbox_seq", ["seq"], unique=True)
        batch_op.create_index("ix_outbox_unsequenced", ["seq", "id"], unique=False)
    op.execute("UPDATE outbox SET seq = id WHERE published_at IS NOT NULL")
    op.execute(
        "INSERT INTO counters (name, value) SELECT 'event_seq', COALESCE(MAX(seq), 0) FROM outbox"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unsequenced")
        batch_op.drop_index("ix_outbox_seq")
        batch_op.drop_column("seq")
    op.drop_table("counters")
