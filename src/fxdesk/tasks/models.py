"""Tasks and their history (one row per change, written in the same transaction)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fxdesk.db import Base, UTCDateTime, utcnow
from fxdesk.users.models import User


class TaskStatus(StrEnum):
    open = "open"
    done = "done"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


_LIVE = text("deleted_at IS NULL")


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    # casefolded title: unique among tasks that are not deleted (a partial unique index)
    title_key: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TaskStatus] = mapped_column(
        Enum(TaskStatus, name="task_status", native_enum=False, length=8, create_constraint=True),
        default=TaskStatus.open,
    )
    priority: Mapped[Priority] = mapped_column(
        Enum(Priority, name="task_priority", native_enum=False, length=8, create_constraint=True),
        default=Priority.normal,
    )
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id], lazy="joined")
    finished_by: Mapped[User | None] = relationship(foreign_keys=[finished_by_id], lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")

    __table_args__ = (
        Index(
            "uq_tasks_live_title",
            "title_key",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        # each order of the board, over the live tasks (migration 0010)
        *(
            Index(name, *columns, sqlite_where=_LIVE, postgresql_where=_LIVE)
            for name, columns in (
                ("ix_tasks_live_created", ("created_at", "id")),
                ("ix_tasks_live_status", ("status", "created_at", "id")),
                ("ix_tasks_live_updated", ("updated_at", "id")),
                ("ix_tasks_live_finished", ("finished_at", "id")),
            )
        ),
        Index("ix_tasks_created_by", "created_by_id", "created_at"),
        Index("ix_tasks_finished_by", "finished_by_id"),
    )


class TaskHistory(Base):
    __tablename__ = "task_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))
    changes: Mapped[str] = mapped_column(Text, default="{}")  # JSON {field: [old, new]}
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_task_history_task", "task_id", "id"),)
