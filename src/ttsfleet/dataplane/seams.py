"""The gateway's seams: small Protocols between its logic and the outside world.

Each has one real implementation (`upstream.py`, `fallback.py`, `credentials.py`, `LoopClock` below)
and fakes in tests. Nothing but those implementations imports websockets or httpx.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ttsfleet.protocol import SpeakOptions


class Clock(Protocol):
    """Monotonic seconds; the event loop's time in production, so asyncio timeouts agree with it."""

    def monotonic(self) -> float: ...


class LoopClock:
    """The clock of the event loop that first reads it (a gateway lives in one loop).

    Bound once because Python 3.11's `asyncio.get_running_loop()` makes a getpid() system call on every
    call: read per frame and per lease, that was 2 % of a busy gateway's CPU.
    """

    def __init__(self) -> None:
        self._time: Callable[[], float] | None = None

    def monotonic(self) -> float:
        time = self._time
        if time is None:
            time = self._time = asyncio.get_running_loop().time
        return time()


AudioTap = Callable[[bytes], bool]
"""Offered each whole audio frame as it arrives, in order: True when it relayed the frame there and then,
False to leave it (and every frame after it until `receive` has returned them) to `receive`."""


class UpstreamSocket(Protocol):
    """One open speak WebSocket to Deepgram; errors arrive as `errors.UpstreamError`."""

    @property
    def request_id(self) -> str: ...

    @property
    def is_open(self) -> bool: ...

    async def send_texts(self, *texts: str) -> None:
        """Send each text as a message of its own, all in one write to the network."""
        ...

    def send_texts_now(self, *texts: str) -> bool:
        """As `send_texts`, at once and without waiting; False, having sent nothing, where that would
        wait (the socket is not open, or its writes are paused until the network takes what is queued)."""
        ...

    async def receive(self) -> str | bytes: ...

    def tap_audio(self, tap: AudioTap | None) -> None:
        """Offer audio frames to `tap` as they arrive, before `receive` (None: stop)."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class UpstreamConnector(Protocol):
    """Opens speak sockets; the handshake and the first Metadata are its job."""

    async def connect(self, options: SpeakOptions, key: str) -> tuple[UpstreamSocket, str]:
        """The socket and the Metadata's raw JSON."""
        ...


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """A successful REST answer whose body is still streaming."""

    content_type: str
    request_id: str
    chunks: AsyncIterator[bytes]


class RestSpeaker(Protocol):
    """Synthesizes one text over REST; non-2xx answers raise `errors.UpstreamError`."""

    def speak(
        self, options: SpeakOptions, text: str, key: str
    ) -> AbstractAsyncContextManager[RestAnswer]: ...


class CredentialSource(Protocol):
    """The current Deepgram key, and where to report what Deepgram thought of it."""

    @property
    def key(self) -> str | None: ...

    @property
    def generation(self) -> int: ...

    @property
    def valid(self) -> bool | None: ...

    @property
    def doubted(self) -> bool: ...

    @property
    def refusals(self) -> int: ...

    def report(self, accepted: bool, *, fresh_handshake: bool) -> None: ...
