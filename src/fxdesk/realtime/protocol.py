"""Messages a client may send on /api/v1/ws."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from fxdesk.events.schemas import Channel


class SubscribeOp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["subscribe"]
    channels: list[Channel] = Field(min_length=1, max_length=3)
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
