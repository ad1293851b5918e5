"""Fakes for the gateway's seams: a clock moved by hand, upstream sockets and REST scripted in memory,
a client socket that records what the gateway sends. Waits inside them are loop time (virtual under
looptime), never wall-clock sleeps of the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ttsfleet.dataplane import errors
from ttsfleet.dataplane.breaker import CircuitBreaker
from ttsfleet.dataplane.metrics import Metrics
from ttsfleet.dataplane.pool import Pool
from ttsfleet.dataplane.retrying import RetryPolicy
from ttsfleet.dataplane.seams import AudioTap, RestAnswer
from ttsfleet.dataplane.settings import PoolSettings, TimeoutSettings
from ttsfleet.dataplane.sockets import PoolKey
from ttsfleet.dataplane.utterances import Synthesizer
from ttsfleet.protocol import Encoding, Flushed, Metadata, SocketLimits, SpeakOptions, parse_client_message
from ttsfleet.protocol.messages import Clear, Cleared, Flush

METADATA = Metadata("upstream-id", "aura-2-thalia-en", "v1", "uuid-1").to_json()
DEFAULT_KEY = PoolKey("aura-2-thalia-en", Encoding.LINEAR16, 24000, 1.0)
# Not the pool's default key, so the first lease opens a socket made by the test's script.
SCRIPTED_OPTIONS = SpeakOptions(model="aura-2-thalia-en", encoding=Encoding.LINEAR16, sample_rate=16000)
RELAY_TIMEOUTS = TimeoutSettings(connect_s=2, first_byte_s=3, inter_chunk_s=1, utterance_s=20)


@dataclass
class ManualClock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeSocket:
    """Answers each Flush with `chunks` frames of `audio` and Flushed, each Clear with Cleared.

    `stall_after` frames (0: none) and then silence, as a stalled upstream; `gap_s` of loop time
    before each audio frame, as a slow one.
    """

    audio: bytes = b"\x01\x02" * 100
    chunks: int = 1
    stall_after: int | None = None
    gap_s: float = 0.0
    open: bool = True
    sent: list[str] = field(default_factory=list)
    inbox: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)
    flushes: int = 0
    pings: int = 0
    writes_paused: bool = False  # `send_texts_now` refuses, as a real socket whose writes wait

    @property
    def request_id(self) -> str:
        return "upstream-request"

    @property
    def is_open(self) -> bool:
        return self.open

    async def send_texts(self, *texts: str) -> None:
        if not self.open:
            raise errors.UpstreamUnavailable("closed")
        for text in texts:
            self._answer(text)

    def send_texts_now(self, *texts: str) -> bool:
        if not self.open or self.writes_paused:
            return False  # as a real socket closed, or over its high-water mark: `send_texts` waits
        for text in texts:
            self._answer(text)
        return True

    def _answer(self, text: str) -> None:
        self.sent.append(text)
        message = parse_client_message(text)
        if isinstance(message, Flush):
            frames = self.chunks if self.stall_after is None else min(self.stall_after, self.chunks)
            for _ in range(frames):
                self.inbox.put_nowait(self.audio)
            if self.stall_after is None:
                self.inbox.put_nowait(Flushed(self.flushes).to_json())
            self.flushes += 1
        elif isinstance(message, Clear) and self.stall_after is None:
            self.inbox.put_nowait(Cleared(0).to_json())

    async def receive(self) -> str | bytes:
        frame = await self.inbox.get()
        if isinstance(frame, bytes) and self.gap_s:
            await asyncio.sleep(self.gap_s)  # the upstream's pace, in loop time
        return frame

    def tap_audio(self, tap: AudioTap | None) -> None:
        """Frames here are queued before they are read: every one takes `receive`'s way."""

    async def ping(self) -> None:
        self.pings += 1

    async def close(self) -> None:
        self.open = False


@dataclass
class FakeConnector:
    """Opens sockets made by `make`; `fail_with` makes the next connects raise, `hang` never answer."""

    opened: list[tuple[SpeakOptions, str, FakeSocket]] = field(default_factory=list)
    fail_with: errors.UpstreamError | None = None
    hang: bool = False
    make: Callable[[], FakeSocket] = FakeSocket

    async def connect(self, options: SpeakOptions, key: str) -> tuple[FakeSocket, str]:
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_with is not None:
            raise self.fail_with
        socket = self.make()
        self.opened.append((options, key, socket))
        return socket, METADATA


def scripted(*first: FakeSocket) -> Callable[[], FakeSocket]:
    """A `FakeConnector.make` that hands out `first` in order, then healthy sockets."""
    made = iter(first)
    return lambda: next(made, None) or FakeSocket()


@dataclass
class FakeCredentials:
    key: str | None = "key-one"
    generation: int = 1
    reports: list[bool] = field(default_factory=list)
    refusals: int = 0
    valid: bool | None = None

    @property
    def doubted(self) -> bool:
        return self.refusals > 0

    def report(self, accepted: bool, *, fresh_handshake: bool) -> None:
        self.reports.append(accepted)
        self.refusals = 0 if accepted else self.refusals + 1

    def rotate(self, key: str) -> None:
        self.key = key
        self.generation += 1


@dataclass
class FakeRest:
    """A REST upstream: `chunks` chunks of `audio`, or `fail_with`, or silence after `stall_after` chunks."""

    audio: bytes = b"\x03\x04" * 100
    chunks: int = 2
    stall_after: int | None = None
    fail_with: errors.UpstreamError | None = None
    requests: list[tuple[SpeakOptions, str, str]] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def speak(self, options: SpeakOptions, text: str, key: str) -> AsyncIterator[RestAnswer]:
        self.requests.append((options, text, key))
        if self.fail_with is not None:
            raise self.fail_with
        yield RestAnswer("audio/l16;rate=24000", "rest-request", self._chunks())

    async def _chunks(self) -> AsyncIterator[bytes]:
        for index in range(self.chunks):
            if self.stall_after is not None and index >= self.stall_after:
                await asyncio.Event().wait()
            yield self.audio


@dataclass
class PoolHarness:
    pool: Pool
    connector: FakeConnector
    credentials: FakeCredentials
    clock: Any
    breaker: CircuitBreaker


@contextlib.asynccontextmanager
async def running_pool(
    clock: Any,
    connector: FakeConnector | None = None,
    timeouts: TimeoutSettings | None = None,
    max_sockets: int = 4,
    spare_ratio: float = 0.25,
) -> AsyncIterator[PoolHarness]:
    """A pool on fake sockets with its maintenance loop running; the default key is `DEFAULT_KEY`."""
    connector = connector or FakeConnector()
    credentials = FakeCredentials()
    breaker = CircuitBreaker(clock, failure_threshold=2, open_s=10, half_open_max_probes=1)
    pool = Pool(
        connector,
        credentials,
        breaker,
        clock,
        PoolSettings(
            warm_min_per_key=1, max_sockets=max_sockets, max_socket_age_s=3300, spare_ratio=spare_ratio
        ),
        timeouts or TimeoutSettings(connect_s=0.2, first_byte_s=1, inter_chunk_s=1, utterance_s=60),
        SocketLimits(),
        DEFAULT_KEY,
    )
    task = asyncio.create_task(pool.run(), name="test:pool")
    try:
        yield PoolHarness(pool, connector, credentials, clock, breaker)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def relaying(
    harness: PoolHarness, rest: FakeRest, metrics: Metrics, timeouts: TimeoutSettings
) -> Synthesizer:
    """A synthesizer over the harness's pool and `rest`: no cache, retries without delay."""
    return Synthesizer(
        harness.pool,
        rest,
        harness.credentials,
        CircuitBreaker(harness.clock, failure_threshold=5, open_s=10, half_open_max_probes=1),
        None,
        RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
        timeouts,
        metrics,
        harness.clock,
    )


@dataclass
class FakeClient:
    """A client socket as a session sees it: frames in through `inbox`, out through `outbox`."""

    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    outbox: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)
    closed: asyncio.Future[tuple[int, str]] | None = None

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send_text(self, data: str) -> None:
        self.outbox.put_nowait(data)

    async def send_bytes(self, data: bytes) -> None:
        self.outbox.put_nowait(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        if self.closed is None:
            self.closed = asyncio.get_running_loop().create_future()
        self.closed.set_result((code, reason or ""))

    def send(self, text: str) -> None:
        """What the client sends: a text frame."""
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    def send_binary(self, data: bytes) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "bytes": data})

    def leave(self) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": 1001})
