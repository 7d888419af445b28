"""Chat message shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fxdesk.fields import MultilineText
from fxdesk.users.schemas import UserPublic

MAX_MESSAGE = 2000


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: MultilineText = Field(min_length=1, max_length=MAX_MESSAGE)


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str
    author: UserPublic
    created_at: datetime


class MessagePage(BaseModel):
    items: list[MessageOut]
    has_more: bool
