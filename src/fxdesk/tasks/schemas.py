"""Task shapes for the main API; the seed shape lives in compat/tasks.py."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fxdesk.fields import Line, MultilineText, Timestamp, check_text
from fxdesk.tasks.models import Priority, TaskStatus
from fxdesk.users.schemas import UserPublic


def _clean_title(value: str) -> str:
    value = " ".join(check_text(value).split())
    if not value:
        raise ValueError("Title must not be blank")
    return value


Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_clean_title)]
Description = Annotated[MultilineText, Field(max_length=10_000)]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    priority: Priority = Priority.normal
    assignee_id: int | None = Field(default=None, ge=1, le=2**62)
    due_at: Timestamp | None = None


class TaskUpdate(BaseModel):
    """Fields to change; `version` may stand in for the If-Match header."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    priority: Priority | None = None
    assignee_id: int | None = Field(default=None, ge=1, le=2**62)
    due_at: Timestamp | None = None
    version: int | None = Field(default=None, ge=1, le=2**62)


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str
    status: TaskStatus
    priority: Priority
    assignee: UserPublic | None
    due_at: datetime | None
    created_by: UserPublic
    created_at: datetime
    updated_at: datetime
    finished_by: UserPublic | None
    finished_at: datetime | None
    version: int
    deleted_at: datetime | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class TaskSort(StrEnum):
    created_at = "created_at"
    created_at_desc = "-created_at"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"
    finished_at = "finished_at"
    finished_at_desc = "-finished_at"
    by_title = "title"
    by_title_desc = "-title"


class HistoryEntry(BaseModel):
    id: int
    action: str
    actor: UserPublic
    changes: dict[str, list[object]]
    at: datetime


class TaskQuery(BaseModel):
    """The board's filters, order and page (the query of GET /api/v1/tasks), validated in one
    step rather than one parameter at a time."""

    status: TaskStatus | None = None
    created_by: int | None = Field(default=None, ge=1, le=2**62)
    finished_by: int | None = Field(default=None, ge=1, le=2**62)
    q: Annotated[Line, Field(max_length=200)] | None = None
    updated_since: Timestamp | None = Field(
        default=None, description="An aware time, e.g. 2026-01-31T10:00:00Z"
    )
    sort: TaskSort = TaskSort.created_at_desc
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=10_000_000)
