"""Request and response bodies of the auth routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fxdesk.fields import Line
from fxdesk.users.schemas import Password, Username, UserOut


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password


class LoginIn(BaseModel):
    username: Line = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


class SessionOut(BaseModel):
    """The logged-in user and when the session ends; the token itself travels only in the cookie."""

    user: UserOut
    expires_at: datetime


class MessageOut(BaseModel):
    message: str


class SessionInfoOut(BaseModel):
    """One live session of mine (`last_seen_at` is kept to the minute)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str
    address: str
    current: bool = False


class SessionListOut(BaseModel):
    items: list[SessionInfoOut]
