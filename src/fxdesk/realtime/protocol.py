"""Messages a client may send on /api/v1/ws."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from fxdesk.events.schemas import CLIENT_CHANNELS, Channel


def _client_channel(channel: Channel) -> Channel:
    if channel not in CLIENT_CHANNELS:
        raise ValueError(f"unknown channel; choose from {', '.join(sorted(CLIENT_CHANNELS))}")
    return channel


ClientChannel = Annotated[Channel, AfterValidator(_client_channel)]


class SubscribeOp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["subscribe"]
    channels: list[ClientChannel] = Field(min_length=1, max_length=3)
    since: int | None = Field(default=None, ge=0, le=2**62)


class PingOp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["ping"]


class ChatOp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["chat"]
    text: str = Field(min_length=1, max_length=2000)


ClientOp = Annotated[SubscribeOp | PingOp | ChatOp, Field(discriminator="op")]
client_op = TypeAdapter(ClientOp)
