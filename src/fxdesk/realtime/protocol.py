"""The socket protocol: the messages a client may send on /api/v1/ws, and every close code
fxdesk sends (the README's table of close codes is this one)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from fxdesk.events.schemas import CLIENT_CHANNELS, Channel


def _client_channel(channel: Channel) -> Channel:
    if channel not in CLIENT_CHANNELS:
        raise ValueError(f"unknown channel; choose from {', '.join(sorted(CLIENT_CHANNELS))}")
    return channel


ClientChannel = Annotated[Channel, AfterValidator(_client_channel)]

# Close codes
CLOSE_UNSUPPORTED_DATA = 1003  # a binary frame: this protocol speaks JSON text only
CLOSE_POLICY = 1008  # handshake refused: a foreign origin, no session, or a bad one
CLOSE_SERVICE_RESTART = 1012  # the server is stopping (what uvicorn sends): reconnect and resume
CLOSE_SLOW_CONSUMER = 1013  # "try again later": reconnect and resume with `since`
CLOSE_SESSION_ENDED = 4401  # logged out, ended elsewhere, expired, or the account deactivated
CLOSE_ACCESS_CHANGED = 4403  # the account's role or state changed: reconnect to get the new one


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
