"""usernames unique by their confusable skeleton; username_key wide enough for case folding

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 08:00:00.000000

`username_skeleton` is the UTS #39 skeleton of the NFKC, case-folded name (see
fxdesk/users/confusables.py), unique, so `admin` spelt with a Cyrillic a cannot sit beside `admin`.
Existing rows get theirs in id order; where two existing accounts already look alike, the
older keeps the plain skeleton and each later one gets `<skeleton>#<id>`: both keep working
(login still goes by `username_key`), and no new look-alike of either can be registered.
`username_key` grows to 128 characters: case folding may lengthen a 32-character name
(`ß` -> `ss`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from fxdesk.users.confusables import username_skeleton

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "username_key", existing_type=sa.String(length=32), type_=sa.String(length=128)
        )
        batch_op.add_column(sa.Column("username_skeleton", sa.String(length=255), nullable=True))

    connection = op.get_bind()
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("username", sa.String),
        sa.column("username_skeleton", sa.String),
    )
    taken: set[str] = set()
    for user_id, username in connection.execute(
        sa.select(users.c.id, users.c.username).order_by(users.c.id)
    ):
        key = username_skeleton(username)
        if key in taken:
            key = f"{key}#{user_id}"
        taken.add(key)
        connection.execute(
            users.update().where(users.c.id == user_id).values(username_skeleton=key)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "username_skeleton", existing_type=sa.String(length=255), nullable=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_users_username_skeleton"), ["username_skeleton"]
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_username_skeleton"), type_="unique")
        batch_op.drop_column("username_skeleton")
        batch_op.alter_column(
            "username_key", existing_type=sa.String(length=128), type_=sa.String(length=32)
        )
