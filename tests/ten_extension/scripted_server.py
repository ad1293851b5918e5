"""A real speak WebSocket server on loopback whose answer to each Flush a test writes, for what the
emulator does not do (a server `Error` message), recording every client message per socket."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

AUDIO_CHUNK = bytes(3200)  # 100 ms of silence at 16 kHz linear16

# (socket index, flush index on that socket) → the frames to send in answer.
FlushAnswer = Callable[[int, int], list[str | bytes]]


def audio_then_flushed(sequence_id: int) -> list[str | bytes]:
    """What Deepgram answers a Flush with: audio, then Flushed."""
    return [AUDIO_CHUNK, AUDIO_CHUNK, json.dumps({"type": "Flushed", "sequence_id": sequence_id})]


@dataclass
class ScriptedSpeakServer:
    answer: FlushAnswer = lambda _socket, flush: audio_then_flushed(flush)
    received: list[list[dict[str, Any]]] = field(default_factory=list)
    _server: Server | None = None

    @property
    def ws_url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> ScriptedSpeakServer:
        self._server = await serve(self._session, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, ws: ServerConnection) -> None:
        socket_index = len(self.received)
        messages: list[dict[str, Any]] = []
        self.received.append(messages)
        flushes = 0
        async for frame in ws:
            message = json.loads(frame)
            messages.append(message)
            kind = message.get("type")
            if kind == "Flush":
                for reply in self.answer(socket_index, flushes):
                    await ws.send(reply)
                flushes += 1
            elif kind == "Clear":
                await ws.send(json.dumps({"type": "Cleared", "sequence_id": flushes}))
            elif kind == "Close":
                await ws.close(1000)
                return
