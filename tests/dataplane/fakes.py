"""Fakes for the gateway's seams: a clock moved by hand, upstream sockets scripted in memory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ttsfleet.dataplane import errors
from ttsfleet.protocol import Flushed, Metadata, SpeakOptions, parse_client_message
from ttsfleet.protocol.messages import Clear, Cleared, Flush

METADATA = Metadata("upstream-id", "aura-2-thalia-en", "v1", "uuid-1").to_json()


@dataclass
class ManualClock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeSocket:
    """Answers each Flush with `audio` and Flushed, each Clear with Cleared."""

    audio: bytes = b"\x01\x02" * 100
    open: bool = True
    sent: list[str] = field(default_factory=list)
    inbox: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)
    flushes: int = 0
    pings: int = 0

    @property
    def request_id(self) -> str:
        return "upstream-request"

    @property
    def is_open(self) -> bool:
        return self.open

    async def send_text(self, text: str) -> None:
        if not self.open:
            raise errors.UpstreamUnavailable("closed")
        self.sent.append(text)
        message = parse_client_message(text)
        if isinstance(message, Flush):
            self.inbox.put_nowait(self.audio)
            self.inbox.put_nowait(Flushed(self.flushes).to_json())
            self.flushes += 1
        elif isinstance(message, Clear):
            self.inbox.put_nowait(Cleared(0).to_json())

    async def receive(self) -> str | bytes:
        return await self.inbox.get()

    async def ping(self) -> None:
        self.pings += 1

    async def close(self) -> None:
        self.open = False


@dataclass
class FakeConnector:
    """Opens FakeSockets; `fail_with` makes the next connects raise."""

    opened: list[tuple[SpeakOptions, str, FakeSocket]] = field(default_factory=list)
    fail_with: errors.UpstreamError | None = None

    async def connect(self, options: SpeakOptions, key: str) -> tuple[FakeSocket, str]:
        if self.fail_with is not None:
            raise self.fail_with
        socket = FakeSocket()
        self.opened.append((options, key, socket))
        return socket, METADATA


@dataclass
class FakeCredentials:
    key: str | None = "key-one"
    generation: int = 1
    reports: list[bool] = field(default_factory=list)

    def report(self, accepted: bool) -> None:
        self.reports.append(accepted)

    def rotate(self, key: str) -> None:
        self.key = key
        self.generation += 1
