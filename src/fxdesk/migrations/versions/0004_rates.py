"""rates: currencies, rates, rate revisions, manual rates, fetch log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Exact decimals are stored as text (str(Decimal)); see fxdesk.rates.models.DecimalText.
DECIMAL_TEXT = sa.String(length=64)


def upgrade() -> None:
    op.create_table(
        "currencies",
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("cbr_id", sa.String(length=8), nullable=False),
        sa.Column("num_code", sa.String(length=3), nullable=True),
        sa.Column("name_ru", sa.String(length=128), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("nominal", sa.Integer(), nullable=False),
        sa.Column("first_date", sa.Date(), nullable=False),
        sa.Column("last_date", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_currencies")),
    )
    op.create_table(
        "rates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("nominal", sa.Integer(), nullable=False),
        sa.Column("value", DECIMAL_TEXT, nullable=False),
        sa.Column("unit_rate", DECIMAL_TEXT, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["code"], ["currencies.code"], name=op.f("fk_rates_code_currencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rates")),
        # Also the history index: one code's rows by date, read backwards for newest first.
        sa.UniqueConstraint("code", "date", name="uq_rates_code_date"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("rates", schema=None) as batch_op:
        batch_op.create_index("ix_rates_date_code", [sa.text("date DESC"), "code"], unique=False)

    op.create_table(
        "rate_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rate_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("nominal", sa.Integer(), nullable=False),
        sa.Column("value", DECIMAL_TEXT, nullable=False),
        sa.Column("unit_rate", DECIMAL_TEXT, nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rate_id"],
            ["rates.id"],
            name=op.f("fk_rate_revisions_rate_id_rates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_revisions")),
    )
    with op.batch_alter_table("rate_revisions", schema=None) as batch_op:
        batch_op.create_index("ix_rate_revisions_rate_id", ["rate_id"], unique=False)

    op.create_table(
        "manual_rates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", DECIMAL_TEXT, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_manual_rates_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manual_rates")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("manual_rates", schema=None) as batch_op:
        batch_op.create_index("ix_manual_rates_code", ["code"], unique=False)

    op.create_table(
        "fetch_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("requested_date", sa.Date(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=True),
        sa.Column("table_date", sa.Date(), nullable=True),
        sa.Column("rows_changed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fetch_log")),
    )
    with op.batch_alter_table("fetch_log", schema=None) as batch_op:
        batch_op.create_index("ix_fetch_log_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_fetch_log_requested_date", ["requested_date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fetch_log", schema=None) as batch_op:
        batch_op.drop_index("ix_fetch_log_requested_date")
        batch_op.drop_index("ix_fetch_log_started_at")
    op.drop_table("fetch_log")

    with op.batch_alter_table("manual_rates", schema=None) as batch_op:
        batch_op.drop_index("ix_manual_rates_code")
    op.drop_table("manual_rates")

    with op.batch_alter_table("rate_revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_revisions_rate_id")
    op.drop_table("rate_revisions")

    with op.batch_alter_table("rates", schema=None) as batch_op:
        batch_op.drop_index("ix_rates_date_code")
    op.drop_table("rates")
    op.drop_table("currencies")
