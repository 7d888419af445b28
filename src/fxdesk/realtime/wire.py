"""Direct frame writes for live fan-out.

Every subscriber of a channel gets the same event, and a server's WebSocket frames are neither
masked nor (here) compressed, so the frame is the same bytes for every socket: it is encoded
once per event and written to each connection's transport. Through ASGI each copy would be
framed again, in three layers of coroutines and a task wake-up per socket; at 1000 sockets that
was about 70 µs a frame and 70 ms of a blocked loop per event.

This reaches under ASGI into uvicorn's sans-I/O WebSocket protocol (the one `fxdesk serve`
names in its options, from the uv.lock pin). Under any other server `Wire.of` gives None and
the client is served through ASGI alone; tests assert that the served app takes this path.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

_FIN_TEXT = 0x81  # FIN bit + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455 5.2) carrying `payload`."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN_TEXT, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload


# What a Wire reads or calls on uvicorn's protocol and its transport: a uvicorn that renamed
# any of them gets plain ASGI sends instead of a Wire that fails mid-fan-out.
PROTOCOL_INTERNALS = ("transport", "writable", "close_sent", "disconnected")
TRANSPORT_INTERNALS = ("write", "is_closing", "get_write_buffer_size", "get_extra_info")


class Wire:
    """The open socket under one accepted WebSocket, for writing whole frames to it."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @classmethod
    def of(cls, websocket: WebSocket) -> Wire | None:
        """The wire under `websocket` when uvicorn's sans-I/O protocol serves it and has every
        internal a Wire uses, else None (the socket is then written through plain ASGI)."""
        send: Any = getattr(websocket, "_send", None)
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol):
            return None
        if not all(hasattr(protocol, name) for name in PROTOCOL_INTERNALS):
            return None
        transport = protocol.transport
        if not all(hasattr(transport, name) for name in TRANSPORT_INTERNALS):
            return None
        return cls(protocol)

    @property
    def ready(self) -> bool:
        """True when a frame may go out now: open, and the transport is below its high-water
        mark (above it, frames wait in the client's bounded queue)."""
        protocol = self._protocol
        return (
            protocol.writable.is_set()
            and not protocol.close_sent
            and not protocol.disconnected
            and not protocol.transport.is_closing()
        )

    @property
    def buffered(self) -> int:
        """Bytes written to the transport that the kernel has not taken yet."""
        return int(self._protocol.transport.get_write_buffer_size())

    def bound_kernel_buffer(self, size: int) -> None:
        """Pin the socket's kernel send buffer to `size` bytes.

        Left to autotuning it grows to megabytes on loopback, and a client that stopped reading
        would hide that much backlog in the kernel, where no queue limit can see it.
        """
        sock = self._protocol.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def write(self, frame: bytes) -> None:
        self._protocol.transport.write(frame)
