"""Seed-compatible auth routes: POST /auth/register and POST /auth/login, texts as the seed had."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from fxdesk.auth.cookies import client_address, start_session
from fxdesk.auth.dependencies import SameOrigin
from fxdesk.auth.router import accounts
from fxdesk.deps import database_of
from fxdesk.errors import InvalidInput, error_responses
from fxdesk.fields import Line
from fxdesk.users.schemas import PASSWORD_MAX, PASSWORD_MIN, normalize_username

router = APIRouter(prefix="/auth", tags=["seed"], responses=error_responses(403, 422))


class SeedRegisterIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    confirm_password: str | None = Field(default=None, max_length=1024)


class SeedRegisterOut(BaseModel):
    username: str
    register_date: datetime


class SeedMessage(BaseModel):
    message: str


@router.post(
    "/register",
    response_model=SeedRegisterOut,
    responses=error_responses(403, 409),
    dependencies=[SameOrigin],
)
async def seed_register(body: SeedRegisterIn, request: Request) -> Any:
    if not PASSWORD_MIN <= len(body.password) <= PASSWORD_MAX:
        raise InvalidInput("Length must be between 8 and 64")
    if body.confirm_password is not None and body.confirm_password != body.password:
        raise InvalidInput("Passwords do not match")
    try:
        username = normalize_username(body.username)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    user = await accounts(request).register(database_of(request), username, body.password)
    return SeedRegisterOut(username=user.username, register_date=user.created_at)


@router.post(
    "/login",
    response_model=SeedMessage,
    responses=error_responses(401, 403, 429),
    dependencies=[SameOrigin],
)
async def seed_login(
    username: Annotated[Line, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    request: Request,
    response: Response,
) -> Any:
    user = await accounts(request).authenticate(
        database_of(request), username, password, client_address(request)
    )
    await start_session(request, response, user)
    return SeedMessage(message="Logged in successfully")
