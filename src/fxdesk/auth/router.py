"""Main API auth routes: /api/v1/auth/*."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError

from fxdesk.auth.cookies import client_address, end_session, start_session
from fxdesk.auth.dependencies import CurrentUser, SameOrigin
from fxdesk.auth.schemas import LoginIn, MessageOut, PasswordChangeIn, RegisterIn, SessionOut
from fxdesk.auth.service import AccountService
from fxdesk.db import DbSession
from fxdesk.errors import InvalidInput
from fxdesk.users.schemas import UserOut

router = APIRouter(prefix="/auth", tags=["auth"])

_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginIn.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": LoginIn.model_json_schema()},
        },
    }
}


def accounts(request: Request) -> AccountService:
    service: AccountService = request.app.state.accounts
    return service


async def read_login(request: Request) -> LoginIn:
    """Credentials from a JSON body or an HTML/OAuth2-style form, validated the same way."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            data: Any = {key: form.get(key) for key in ("username", "password")}
        else:
            data = await request.json()
        return LoginIn.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("username and password are required") from exc
    except Exception as exc:  # unreadable body: bad JSON, bad form encoding
        raise InvalidInput("Body must be JSON or a form with username and password") from exc


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    dependencies=[SameOrigin],
)
async def register(body: RegisterIn, request: Request) -> Any:
    return await accounts(request).register(
        request.app.state.database, body.username, body.password
    )


@router.post(
    "/login", response_model=SessionOut, openapi_extra=_LOGIN_BODY, dependencies=[SameOrigin]
)
async def login(request: Request, response: Response) -> Any:
    credentials = await read_login(request)
    user = await accounts(request).authenticate(
        request.app.state.database,
        credentials.username,
        credentials.password,
        client_address(request),
    )
    expires_at = start_session(request, response, user)
    return SessionOut(user=UserOut.model_validate(user), expires_at=expires_at)


@router.post("/logout", response_model=MessageOut, dependencies=[SameOrigin])
async def logout(request: Request, response: Response) -> Any:
    """Ends this browser's session by clearing its cookie (safe to call when logged out)."""
    end_session(request, response)
    return MessageOut(message="Logged out")


@router.post("/logout-all", response_model=MessageOut)
async def logout_all(
    user: CurrentUser, request: Request, response: Response, session: DbSession
) -> Any:
    """Revokes every session of this user, on every device."""
    await accounts(request).revoke_sessions(session, user)
    end_session(request, response)
    return MessageOut(message="Logged out everywhere")


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> Any:
    return user


@router.post("/password", response_model=SessionOut)
async def change_password(
    body: PasswordChangeIn,
    current: CurrentUser,
    request: Request,
    response: Response,
) -> Any:
    """Changes the password, ends every other session, and renews this one."""
    user = await accounts(request).change_password(
        request.app.state.database, current, body.current_password, body.new_password
    )
    expires_at = start_session(request, response, user)
    return SessionOut(user=UserOut.model_validate(user), expires_at=expires_at)
