"""Chat: validate, rate-limit and store a message, then announce it through the outbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from fxdesk.auth.ratelimit import SlidingWindowCounter
from fxdesk.chat.models import ChatMessage
from fxdesk.chat.schemas import MAX_MESSAGE, MessageOut
from fxdesk.db import utcnow
from fxdesk.errors import InvalidInput, NotFound, PermissionDenied, TooManyRequests
from fxdesk.events.outbox import add_event
from fxdesk.events.schemas import EventType
from fxdesk.fields import check_text
from fxdesk.users.models import Role, User


class MessageNotFound(NotFound):
    detail = "Message not found"


def message_out(message: ChatMessage) -> MessageOut:
    return MessageOut.model_validate(message)


async def post_message(
    session: AsyncSession, author: User, text: str, limiter: SlidingWindowCounter
) -> MessageOut:
    """Every way in (REST, both sockets) arrives here, so the text is checked here too."""
    try:
        text = check_text(text, multiline=True).strip()
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if not text or len(text) > MAX_MESSAGE:
        raise InvalidInput(f"A message has 1 to {MAX_MESSAGE} characters")
    key = str(author.id)
    retry_after = await limiter.retry_after(session, key)
    if retry_after:
        raise TooManyRequests(
            "You are sending messages too fast", headers={"Retry-After": str(retry_after)}
        )
    await limiter.hit(session, key)
    message = ChatMessage(author_id=author.id, text=text, created_at=utcnow())
    session.add(message)
    await session.flush()
    await session.refresh(message)
    out = message_out(message)
    await add_event(session, EventType.chat_message, out.model_dump(mode="json"), actor=author)
    return out


async def delete_message(session: AsyncSession, actor: User, message_id: int) -> None:
    message = await session.get(ChatMessage, message_id)
    if message is None or message.deleted_at is not None:
        raise MessageNotFound()
    if message.author_id != actor.id and actor.role not in (Role.moderator, Role.admin):
        raise PermissionDenied()
    message.deleted_at = utcnow()
    message.deleted_by_id = actor.id
    await add_event(session, EventType.chat_deleted, {"id": message.id}, actor=actor)


async def history(
    session: AsyncSession, before: int | None, limit: int
) -> tuple[list[MessageOut], bool]:
    """Newest first, `limit` messages older than `before` (a message id)."""
    query = select(ChatMessage).where(ChatMessage.deleted_at.is_(None))
    if before is not None:
        query = query.where(ChatMessage.id < before)
    rows = list(await session.scalars(query.order_by(ChatMessage.id.desc()).limit(limit + 1)))
    return [message_out(m) for m in rows[:limit]], len(rows) > limit
