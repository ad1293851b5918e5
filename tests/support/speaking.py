"""A raw speak-protocol client for tests: every frame as it arrived, nothing interpreted away.

Conformance tests need to see exact frames and close codes, so this stays close to the wire; the
product's own client (`ttsfleet.client`) is tested separately.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from ttsfleet.protocol import Encoding

RECEIVE_DEADLINE_S = 10.0


@dataclass(frozen=True)
class SpeakTarget:
    """Where a conformance test speaks: the emulator or the gateway."""

    ws_url: str  # e.g. ws://127.0.0.1:8900
    http_url: str
    token: str
    default_model: str = "aura-asteria-en"
    extra_params: tuple[tuple[str, str], ...] = ()  # added to every WebSocket URL

    def speak_url(self, **params: Any) -> str:
        query = "&".join(f"{key}={value}" for key, value in (*self.extra_params, *params.items()))
        return f"{self.ws_url}/v1/speak" + (f"?{query}" if query else "")

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


@dataclass
class Frame:
    """One received frame: text parsed as JSON, or binary audio."""

    text: dict[str, Any] | None = None
    audio: bytes | None = None

    @property
    def type(self) -> str:
        return "Audio" if self.audio is not None else str((self.text or {}).get("type"))


@dataclass
class Received:
    frames: list[Frame] = field(default_factory=list)

    @property
    def audio(self) -> bytes:
        return b"".join(frame.audio for frame in self.frames if frame.audio is not None)

    @property
    def types(self) -> list[str]:
        """Frame types with runs of audio collapsed into one "Audio"."""
        collapsed: list[str] = []
        for frame in self.frames:
            if frame.type == "Audio" and collapsed and collapsed[-1] == "Audio":
                continue
            collapsed.append(frame.type)
        return collapsed


async def connect(
    target: SpeakTarget, headers: dict[str, str] | None = None, **params: Any
) -> ClientConnection:
    return await websockets.connect(
        target.speak_url(**params),
        additional_headers=target.auth_headers if headers is None else headers,
        open_timeout=RECEIVE_DEADLINE_S,
        max_size=None,
    )


async def receive_frame(ws: ClientConnection, deadline_s: float = RECEIVE_DEADLINE_S) -> Frame:
    async with asyncio.timeout(deadline_s):
        message = await ws.recv()
    if isinstance(message, bytes):
        return Frame(audio=message)
    return Frame(text=json.loads(message))


async def receive_until(
    ws: ClientConnection,
    message_type: str,
    into: Received | None = None,
    deadline_s: float = RECEIVE_DEADLINE_S,
) -> Received:
    """Collect frames until one of `message_type` arrives (inclusive)."""
    received = into or Received()
    while True:
        frame = await receive_frame(ws, deadline_s)
        received.frames.append(frame)
        if frame.type == message_type:
            return received


async def speak_and_flush(ws: ClientConnection, text: str) -> Received:
    await ws.send(json.dumps({"type": "Speak", "text": text}))
    await ws.send(json.dumps({"type": "Flush"}))
    return await receive_until(ws, "Flushed")


async def spoken_alone(target: SpeakTarget, text: str, **params: Any) -> bytes:
    """The audio `target` answers for `text` spoken on a socket of its own (Speak, then Flush)."""
    async with await connect(target, **params) as ws:
        await receive_frame(ws)  # Metadata
        return (await speak_and_flush(ws, text)).audio


async def wait_closed(
    ws: ClientConnection, deadline_s: float = RECEIVE_DEADLINE_S
) -> tuple[int | None, str | None]:
    """Drain until the server closes; the close code and reason it sent (None, None if it sent none)."""
    try:
        async with asyncio.timeout(deadline_s):
            async for _ in ws:
                pass
    except websockets.ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    return (received.code, received.reason) if received is not None else (None, None)


def samples_per_second(encoding: Encoding, sample_rate: int) -> int:
    return sample_rate * (2 if encoding is Encoding.LINEAR16 else 1)
