"""Main API chat routes: /api/v1/chat/messages (history, post, delete)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from fxdesk.auth.dependencies import CurrentUser
from fxdesk.caching import etag_response
from fxdesk.chat import service
from fxdesk.chat.schemas import MessageIn, MessageOut, MessagePage
from fxdesk.db import DbSession
from fxdesk.deps import DatabaseDep, PageCache, chat_limiter_of
from fxdesk.errors import error_responses
from fxdesk.events.schemas import Channel

router = APIRouter(prefix="/chat", tags=["chat"], responses=error_responses(401, 403, 422))


@router.get("/messages", response_model=MessagePage)
async def chat_history(
    request: Request,
    user: CurrentUser,
    database: DatabaseDep,
    pages: PageCache,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Newest first; remembered until the next chat event (see fxdesk.caching)."""

    async def build() -> MessagePage:
        async with database.session(write=False) as session:
            items, has_more = await service.history(session, before, limit)
        return MessagePage(items=items, has_more=has_more)

    return etag_response(request, await pages.page(Channel.chat, (before, limit), build))


@router.post(
    "/messages", status_code=201, response_model=MessageOut, responses=error_responses(429)
)
async def post_message(
    body: MessageIn, user: CurrentUser, session: DbSession, request: Request
) -> Any:
    """Same as sending `{"op": "chat", "text": ...}` on the WebSocket."""
    return await service.post_message(session, user, body.text, chat_limiter_of(request))


@router.delete("/messages/{message_id}", status_code=204, responses=error_responses(404))
async def delete_message(
    message_id: Annotated[int, Path(ge=1, le=2**62)], user: CurrentUser, session: DbSession
) -> Response:
    await service.delete_message(session, user, message_id)
    return Response(status_code=204)
