"""Public shapes of a user: never a hash, never a token."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fxdesk.fields import check_text
from fxdesk.users.models import Role

USERNAME_PATTERN = re.compile(r"^[\w.\-]{3,32}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 64


def normalize_username(value: str) -> str:
    value = unicodedata.normalize("NFKC", check_text(value).strip())
    if not USERNAME_PATTERN.fullmatch(value):
        raise ValueError("Username must be 3-32 letters, digits, '_', '.' or '-'")
    return value


def username_key(username: str) -> str:
    return unicodedata.normalize("NFKC", username.strip()).casefold()


Username = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["alice"]),
    AfterValidator(normalize_username),
]
Password = Annotated[str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserPublic(BaseModel):
    """What other users see of an author or actor."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int
