"""The one event envelope shared by NATS and WebSockets, and the channel of each event type."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Channel(StrEnum):
    rates = "rates"
    tasks = "tasks"
    chat = "chat"
    # Session ends and access changes: heard by every instance's hub, never sent to a client.
    access = "access"


CLIENT_CHANNELS = frozenset({Channel.rates, Channel.tasks, Channel.chat})


SUBJECTS: dict[Channel, str] = {
    Channel.rates: "rates.updates",
    Channel.tasks: "tasks.updates",
    Channel.chat: "chat.messages",
    Channel.access: "access.changes",
}
CHANNEL_OF_SUBJECT = {subject: channel for channel, subject in SUBJECTS.items()}


class EventType(StrEnum):
    rate_created = "rate_created"
    rate_updated = "rate_updated"
    rate_deleted = "rate_deleted"
    rates_published = "rates_published"
    task_created = "task_created"
    task_updated = "task_updated"
    task_finished = "task_finished"
    task_reopened = "task_reopened"
    task_deleted = "task_deleted"
    task_restored = "task_restored"
    chat_message = "chat_message"
    chat_deleted = "chat_deleted"
    user_joined = "user_joined"
    user_left = "user_left"
    session_ended = "session_ended"
    access_changed = "access_changed"

    @property
    def channel(self) -> Channel:
        if self in (EventType.session_ended, EventType.access_changed):
            return Channel.access
        if self.value.startswith("rate"):
            return Channel.rates
        if self.value.startswith("task"):
            return Channel.tasks
        return Channel.chat


class Actor(BaseModel):
    id: int
    username: str


class Envelope(BaseModel):
    """`{"event", "seq", "ts", "actor", "event_id", ...payload}`; payload keys sit at top level.

    `seq` is the event's position in fxdesk's event order (strictly increasing across all
    channels): clients resume with it. `event_id` is unique per event and is the JetStream
    `Nats-Msg-Id`, so a publish repeated after a crash is dropped by the stream.
    """

    model_config = ConfigDict(extra="allow")

    event: EventType
    seq: int = Field(ge=1)
    ts: datetime
    actor: Actor | None
    event_id: str = Field(min_length=1, max_length=64)

    @property
    def channel(self) -> Channel:
        return self.event.channel

    @property
    def payload(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
