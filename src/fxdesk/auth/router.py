"""Main API auth routes: /api/v1/auth/*."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import ValidationError

from fxdesk.auth import sessions
from fxdesk.auth.cookies import clear_cookie, client_address, start_session
from fxdesk.auth.dependencies import (
    CurrentSession,
    CurrentUser,
    SameOrigin,
    authenticate_token,
    credential_from,
)
from fxdesk.auth.schemas import (
    LoginIn,
    MessageOut,
    PasswordChangeIn,
    RegisterIn,
    SessionInfoOut,
    SessionListOut,
    SessionOut,
)
from fxdesk.auth.service import AccountService
from fxdesk.db import DbSession
from fxdesk.deps import accounts_of, database_of, tokens_of, user_lookup_of
from fxdesk.errors import AppError, InvalidInput, error_responses
from fxdesk.users.schemas import UserOut

# Every route may refuse a cross-site request (403).
router = APIRouter(prefix="/auth", tags=["auth"], responses=error_responses(403))

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
    service: AccountService = accounts_of(request)
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
    responses=error_responses(403, 409, 422),
    dependencies=[SameOrigin],
)
async def register(body: RegisterIn, request: Request) -> Any:
    return await accounts(request).register(database_of(request), body.username, body.password)


@router.post(
    "/login",
    response_model=SessionOut,
    openapi_extra=_LOGIN_BODY,
    responses=error_responses(401, 403, 422, 429),
    dependencies=[SameOrigin],
)
async def login(request: Request, response: Response) -> Any:
    credentials = await read_login(request)
    user = await accounts(request).authenticate(
        database_of(request),
        credentials.username,
        credentials.password,
        client_address(request),
    )
    expires_at = await start_session(request, response, user)
    return SessionOut(user=UserOut.model_validate(user), expires_at=expires_at)


@router.post("/logout", response_model=MessageOut, dependencies=[SameOrigin])
async def logout(request: Request, response: Response, session: DbSession) -> Any:
    """Ends this session on the server (its token stops working everywhere, its sockets close)
    and clears the cookie; safe to call when logged out."""
    credential = credential_from(request.headers.get("authorization"), request.cookies)
    if credential is not None:
        try:
            auth = await authenticate_token(
                user_lookup_of(request), tokens_of(request), credential.token
            )
        except AppError:
            pass  # already ended or never valid: nothing to end
        else:
            await sessions.end_sessions(
                session, auth.user.id, "logout", only=auth.session_id, actor=auth.user
            )
    clear_cookie(request, response)
    return MessageOut(message="Logged out")


@router.post("/logout-all", response_model=MessageOut, responses=error_responses(401))
async def logout_all(
    user: CurrentUser, request: Request, response: Response, session: DbSession
) -> Any:
    """Revokes every session of this user, on every device."""
    await accounts(request).revoke_sessions(session, user)
    clear_cookie(request, response)
    return MessageOut(message="Logged out everywhere")


@router.get("/me", response_model=UserOut, responses=error_responses(401))
async def me(user: CurrentUser) -> Any:
    return user


@router.post("/password", response_model=SessionOut, responses=error_responses(400, 401, 422))
async def change_password(body: PasswordChangeIn, current: CurrentSession, request: Request) -> Any:
    """Changes the password and ends every other session; this one goes on."""
    user = await accounts(request).change_password(
        database_of(request),
        current.user,
        current.session_id,
        body.current_password,
        body.new_password,
    )
    return SessionOut(user=UserOut.model_validate(user), expires_at=current.expires_at)


@router.get("/sessions", response_model=SessionListOut, responses=error_responses(401))
async def list_sessions(current: CurrentSession, session: DbSession) -> Any:
    """My live sessions (this one marked `current`), newest first."""
    rows = await sessions.list_sessions(session, current.user.id)
    items = []
    for row in rows:
        item = SessionInfoOut.model_validate(row)
        item.current = row.id == current.session_id
        items.append(item)
    return SessionListOut(items=items)


@router.delete(
    "/sessions/{session_id}", response_model=MessageOut, responses=error_responses(401, 404, 422)
)
async def end_session(
    session_id: Annotated[str, Path(min_length=1, max_length=32)],
    current: CurrentSession,
    session: DbSession,
) -> Any:
    """Ends one of my sessions (404 if it is not mine or already ended)."""
    await sessions.end_own_session(session, current.user, session_id)
    return MessageOut(message="Session ended")
