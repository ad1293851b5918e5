"""What goes out to one client socket: a bounded queue drained by one task, and per-utterance sinks.

A frame goes straight onto the socket when nothing is queued ahead of it and the socket can take it
without waiting (`write_now`, the connection's own writer): no hop through the sender's task, no timer.
Otherwise audio waits in the queue at most `max_bytes` deep; a client that does not drain it within the grace
period, or does not take one frame off the socket within it, is a slow client (1011 NET-0002), never
buffered without limit. On Clear, queued audio is
dropped before Cleared is queued, so the client never receives audio after Cleared.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ttsfleet.dataplane.errors import SlowClient


class ClientGone(Exception):
    """The client's socket is closed; nothing more can be sent."""


class FrameSocket(Protocol):
    """The two sends a client socket needs (starlette's WebSocket fits)."""

    async def send_text(self, data: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...


WriteNow = Callable[[str | bytes], bool]
"""Writes one frame at once if the socket takes it without waiting; False: it must go the async way."""


class ClientSender:
    """Frames for one client, in order, with the audio in them bounded."""

    def __init__(
        self, socket: FrameSocket, max_bytes: int, grace_s: float, write_now: WriteNow | None = None
    ) -> None:
        self._socket = socket
        self._write_now = write_now
        self._sending = False  # a frame taken off the queue is still on its way: later ones queue behind it
        self._max_bytes = max_bytes
        self._grace_s = grace_s
        self._frames: deque[str | bytes] = deque()
        self._queued_bytes = 0
        self._has_frames = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()
        self.gone = False

    def push_text(self, text: str) -> None:
        """Queue a JSON message; control messages are small and never refused."""
        if self._wrote_now(text):
            return
        self._frames.append(text)
        self._signal()

    async def push_audio(self, chunk: bytes) -> None:
        """Queue audio; waits up to the grace period for room, then raises SlowClient."""
        if self.gone:
            raise ClientGone("client socket closed")
        if self._wrote_now(chunk):
            return
        if self._queued_bytes + len(chunk) > self._max_bytes and self._queued_bytes > 0:
            self._has_room.clear()
            try:
                async with asyncio.timeout(self._grace_s):
                    while self._queued_bytes + len(chunk) > self._max_bytes and self._queued_bytes > 0:
                        await self._has_room.wait()
                        self._has_room.clear()
            except TimeoutError:
                raise SlowClient(f"client did not read {self._queued_bytes} queued bytes of audio") from None
        self._frames.append(chunk)
        self._queued_bytes += len(chunk)
        self._signal()

    def audio_now(self, chunk: bytes) -> bool:
        """Write audio at once if nothing is queued and the socket takes it without waiting; else False
        and nothing is done (the caller then takes the `push_audio` way)."""
        return not self.gone and self._wrote_now(chunk)

    def _wrote_now(self, frame: str | bytes) -> bool:
        if self._frames or self._sending or self._write_now is None:
            return False
        return self._write_now(frame)

    def discard_audio(self) -> int:
        """Drop queued audio, keep queued messages in order; returns the bytes dropped."""
        dropped = self._queued_bytes
        self._frames = deque(frame for frame in self._frames if isinstance(frame, str))
        self._queued_bytes = 0
        self._has_room.set()
        return dropped

    def _signal(self) -> None:
        self._has_frames.set()

    async def run(self) -> None:
        """Send queued frames until cancelled; raises ClientGone when the client's socket fails."""
        while True:
            if not self._frames:
                self._has_frames.clear()
                await self._has_frames.wait()
                continue
            await self._send_one()

    async def _send_one(self) -> None:
        frame = self._frames.popleft()
        self._sending = True
        try:
            # The socket's own flow control waits for as long as the client does not read: bound it.
            async with asyncio.timeout(self._grace_s):
                if isinstance(frame, bytes):
                    await self._socket.send_bytes(frame)
                else:
                    await self._socket.send_text(frame)
        except TimeoutError:
            raise SlowClient(f"client did not read a frame within {self._grace_s} s") from None
        except Exception as error:  # starlette/uvicorn raise several types for a vanished peer
            self.gone = True
            raise ClientGone("client socket failed") from error
        finally:
            self._sending = False
            if isinstance(frame, bytes):
                self._queued_bytes -= len(frame)
                self._has_room.set()

    async def flush(self, timeout_s: float) -> bool:
        """Send what is still queued (the run task is stopped); False when it did not fit in time."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._frames and not self.gone:
                    await self._send_one()
        except (TimeoutError, ClientGone, SlowClient):
            return False
        return True


class SegmentSink:
    """An utterance's view of the sender: counts the bytes of this utterance only."""

    def __init__(self, sender: ClientSender) -> None:
        self._sender = sender
        self._bytes_sent = 0

    @property
    def bytes_sent(self) -> int:
        return self._bytes_sent

    async def begin(self, content_type: str, source: str) -> None:
        """Raw audio on the socket: the format was fixed at the upgrade."""

    async def audio(self, chunk: bytes) -> None:
        await self._sender.push_audio(chunk)
        self._bytes_sent += len(chunk)

    def audio_now(self, chunk: bytes) -> bool:
        if self._sender.audio_now(chunk):
            self._bytes_sent += len(chunk)
            return True
        return False
