"""What ASGI hides and a faithful emulator needs: the TCP transport and the last frame's arrival time.

uvicorn's protocol classes are subclassed to put a `ConnectionHandle` into each scope's extensions,
so a handler can reset the TCP connection (a fault Deepgram's clients must survive) and count
WebSocket pings as client activity (PROTOCOL.md: pings are the only keep-alive for TTS).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

EXTENSION_KEY = "ttsfleet.connection"


@dataclass(slots=True)
class ConnectionHandle:
    transport: asyncio.Transport
    last_received_at: float = field(default=0.0)

    def reset(self) -> None:
        """Abort the connection with a TCP RST: SO_LINGER with a zero timeout, then close."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone: nothing left to reset
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def connection_of(scope: Any) -> ConnectionHandle | None:
    """The handle for a scope served by `serving.run`; None under other servers (e.g. in-process tests)."""
    extensions = scope.get("extensions") or {}
    handle = extensions.get(EXTENSION_KEY)
    return handle if isinstance(handle, ConnectionHandle) else None


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, exposing its transport and noting when frames arrive."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.ttsfleet_handle = ConnectionHandle(self.transport, asyncio.get_running_loop().time())

    def data_received(self, data: bytes) -> None:
        self.ttsfleet_handle.last_received_at = asyncio.get_running_loop().time()
        super().data_received(data)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The ASGI task was created but has not started yet, so the scope can still be extended.
        extensions: dict[str, Any] = self.scope["extensions"]
        extensions[EXTENSION_KEY] = self.ttsfleet_handle


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, exposing its transport to request handlers."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[EXTENSION_KEY] = ConnectionHandle(self.transport, asyncio.get_running_loop().time())
