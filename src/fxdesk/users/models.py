"""The users table: accounts with a role, an active flag and a token version for revocation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Enum, Integer, String
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from fxdesk.db import Base, UTCDateTime, utcnow
from fxdesk.users.confusables import username_skeleton


def _skeleton_of_username(context: DefaultExecutionContext) -> str:
    parameters = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return username_skeleton(parameters["username"])


class Role(StrEnum):
    user = "user"
    moderator = "moderator"
    admin = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    # casefolded copy: uniqueness and lookups ignore case in every language, on every database
    username_key: Mapped[str] = mapped_column(String(128), unique=True)
    # look-alikes are one name: the UTS #39 skeleton of the key is unique too (set on insert)
    username_skeleton: Mapped[str] = mapped_column(
        String(255), unique=True, default=_skeleton_of_username
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="role", native_enum=False, length=16, create_constraint=True),
        default=Role.user,
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
