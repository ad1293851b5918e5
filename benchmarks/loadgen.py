"""An asyncio load generator playing voice-agent sessions against a Deepgram-compatible `/v1/speak`.

A session connects, speaks a sentence (Speak + Flush), reads audio until Flushed, then stays quiet while
its audio would play and the user answers, and repeats. `speaking_share` is the share of wall time a
session's audio plays (10 % is a typical agent); 1.0 speaks back to back. Cold sessions open a new
socket per utterance. Every loop is bounded by a deadline and an utterance count and ends by itself.

Timestamps come from `time.perf_counter` (uvloop's loop clock ticks in whole milliseconds).
TTFB runs from the first text sent to the first audio byte; in cold mode the clock starts when the
socket is opened, because the agent's text is ready then and the handshake is part of what it waits for.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import ClientConnection, connect

SENTENCES = (
    "The speech fleet is ready.",
    "Turn left at the next light.",
    "Seven green apples sit on the table.",
    "Please hold while I transfer your call.",
    "Your order will arrive on Tuesday morning.",
    "The meeting has been moved to three o'clock.",
    "I found four restaurants near you.",
    "It is sunny with a light breeze today.",
)
# linear16 at the protocol's default 24 kHz, mono.
AUDIO_BYTES_PER_S = 24000 * 2
TYPICAL_AUDIO_S = 2.0
# Deepgram allows 20 Flushes per socket per minute; a direct socket must stay under it.
MAX_UTTERANCES_PER_SESSION = 18
MAX_ERRORS_PER_SESSION = 5
RECONNECT_PAUSE_S = 0.2


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """What every session of one level does."""

    url: str
    speaking_share: float
    duration_s: float
    cold: bool = False
    open_timeout_s: float = 30.0
    utterance_timeout_s: float = 30.0
    max_utterances: int = MAX_UTTERANCES_PER_SESSION
    seed: int = 0


class _InFlight:
    """Utterances under way across a level's sessions, so that the ones done can wait for the rest.

    Sessions that stop speaking at the level's stop close only once no utterance is under way: else
    hundreds of them closed at that instant, and the utterances begun in the last second met that
    wave of closes (a mass disconnect the load model does not have) instead of the steady load.
    """

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def begin(self) -> None:
        self._count += 1
        self._idle.clear()

    def end(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def idle(self) -> None:
        await self._idle.wait()


@dataclass
class LevelRecord:
    """Raw observations of one level, all sessions together."""

    sessions: int
    utterances: int = 0
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    ttfb_ms: list[float] = field(default_factory=list)
    utterance_ms: list[float] = field(default_factory=list)
    gap_ms: list[float] = field(default_factory=list)
    # When each utterance began, in seconds since the level started (same order as ttfb_ms): whether a
    # slow first byte belongs to the level's ramp or to its steady state.
    started_s: list[float] = field(default_factory=list)
    # From opening the connection to the gateway's first message (Metadata): what a session waits for
    # before it can speak, the upgrade included.
    setup_ms: list[float] = field(default_factory=list)
    audio_bytes: int = 0
    audio_bytes_each: list[int] = field(default_factory=list)  # per utterance, same order as started_s
    wall_s: float = 0.0
    began_perf: float = 0.0  # `time.perf_counter()` at the level's start: `started_s` is counted from it

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        self.error_kinds[_describe(exc)] += 1


def _describe(exc: BaseException) -> str:
    if isinstance(exc, websockets.ConnectionClosed) and exc.rcvd is not None:
        return f"close {exc.rcvd.code} {exc.rcvd.reason}".strip()
    if isinstance(exc, websockets.InvalidStatus):
        return f"http {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


class _Session:
    def __init__(
        self,
        plan: SessionPlan,
        token: str,
        index: int,
        record: LevelRecord,
        stop_at: float,
        level_started: float,
        in_flight: _InFlight,
    ) -> None:
        self._plan = plan
        self._in_flight = in_flight
        self._headers = {"Authorization": f"Token {token}"}
        self._index = index
        self._record = record
        self._stop_at = stop_at
        self._level_started = level_started
        self._random = random.Random(plan.seed * 1_000_003 + index)
        self._spoken = 0
        self._errors = 0
        self._loop = asyncio.get_running_loop()
        # Set by a wait cut short at the stop: without it, every session whose pause reached past the
        # stop woke at that one instant, and those whose timer fired a hair early all spoke at once, a
        # burst of simultaneous utterances in the level's last second that the load model does not have.
        self._stopped = False

    def _more(self) -> bool:
        return (
            not self._stopped
            and self._loop.time() < self._stop_at
            and self._spoken < self._plan.max_utterances
            and self._errors < MAX_ERRORS_PER_SESSION
        )

    def _connect(self) -> connect:
        return connect(
            self._plan.url,
            additional_headers=self._headers,
            max_size=None,
            open_timeout=self._plan.open_timeout_s,
            compression=None,
            # No keepalive pings: a level's sessions connect within a second, so websockets' pings (every
            # 20 s) went out all together, a storm the load model does not have that put the direct
            # baseline's emulator behind at second 20 of every 1,000-session level.
            ping_interval=None,
        )

    def _pause_s(self, audio_s: float, busy_s: float) -> float:
        """Quiet time after an utterance so that audio plays `speaking_share` of the time, ±50 %."""
        if self._plan.speaking_share >= 1.0:
            return 0.0
        cycle_s = audio_s / self._plan.speaking_share
        return max(0.0, cycle_s - busy_s) * self._random.uniform(0.5, 1.5)

    async def run(self) -> None:
        if self._plan.cold:
            await self._stagger()
            await self._run_cold()
        else:
            await self._run_persistent()

    async def _stagger(self) -> None:
        """Wait a random share of one typical cycle, so that speaking sessions are spread evenly."""
        if self._plan.speaking_share < 1.0:
            offset_s = self._random.uniform(0, TYPICAL_AUDIO_S / self._plan.speaking_share)
            await self._sleep_until_stop(offset_s)

    async def _run_persistent(self) -> None:
        staggered = False
        while self._more():
            try:
                opened = time.perf_counter()
                async with self._connect() as ws:
                    async with asyncio.timeout(self._plan.open_timeout_s):  # Metadata
                        await ws.recv()
                    self._record.setup_ms.append((time.perf_counter() - opened) * 1000)
                    if not staggered:  # agents hold their socket from the start, then speak now and then
                        staggered = True
                        await self._stagger()
                    while self._more():
                        await self._pause(await self._utterance(ws, time.perf_counter()))
                    async with asyncio.timeout(self._plan.utterance_timeout_s):
                        await self._in_flight.idle()
            except Exception as exc:  # every failure is a figure, then the agent reconnects
                self._errors += 1
                self._record.fail(exc)
                await asyncio.sleep(RECONNECT_PAUSE_S)

    async def _run_cold(self) -> None:
        while self._more():
            started = time.perf_counter()
            try:
                async with self._connect() as ws:
                    busy_audio = await self._utterance(ws, started)
            except Exception as exc:
                self._errors += 1
                self._record.fail(exc)
                await asyncio.sleep(RECONNECT_PAUSE_S)
                continue
            await self._pause(busy_audio)

    async def _pause(self, busy_audio: tuple[float, float]) -> None:
        busy_s, audio_s = busy_audio
        await self._sleep_until_stop(self._pause_s(audio_s, busy_s))

    async def _sleep_until_stop(self, wait_s: float) -> None:
        """Sleep `wait_s`, or until the stop if that comes first; then this session speaks no more."""
        left_s = self._stop_at - self._loop.time()
        if wait_s >= left_s:
            self._stopped = True
            wait_s = max(0.0, left_s)
        if wait_s > 0:
            await asyncio.sleep(wait_s)

    async def _utterance(self, ws: ClientConnection, started: float) -> tuple[float, float]:
        """One sentence from `started` to Flushed; returns (seconds busy, seconds of audio)."""
        text = SENTENCES[(self._index + self._spoken) % len(SENTENCES)]
        self._spoken += 1
        first: float | None = None
        last = started
        audio_bytes = 0
        gaps: list[float] = []
        self._in_flight.begin()
        try:
            await ws.send(json.dumps({"type": "Speak", "text": text}))
            await ws.send('{"type":"Flush"}')
            async with asyncio.timeout(self._plan.utterance_timeout_s):
                while True:
                    message = await ws.recv()
                    now = time.perf_counter()
                    if isinstance(message, bytes):
                        if first is None:
                            first = now
                        else:
                            gaps.append((now - last) * 1000)
                        last = now
                        audio_bytes += len(message)
                    elif '"Flushed"' in message:
                        break
        finally:
            self._in_flight.end()
        done = time.perf_counter()
        record = self._record
        record.utterances += 1
        record.audio_bytes += audio_bytes
        record.audio_bytes_each.append(audio_bytes)
        record.ttfb_ms.append(((first if first is not None else done) - started) * 1000)
        record.utterance_ms.append((done - started) * 1000)
        record.started_s.append(started - self._level_started)
        record.gap_ms.extend(gaps)
        return done - started, audio_bytes / AUDIO_BYTES_PER_S


async def run_level(plan: SessionPlan, tokens: list[str]) -> LevelRecord:
    """Play `len(tokens)` sessions (one token each) for `plan.duration_s`, then let them finish."""
    record = LevelRecord(sessions=len(tokens))
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop_at = started + plan.duration_s
    started_perf = time.perf_counter()
    record.began_perf = started_perf
    in_flight = _InFlight()
    sessions = [
        _Session(plan, token, index, record, stop_at, started_perf, in_flight)
        for index, token in enumerate(tokens)
    ]
    async with asyncio.TaskGroup() as group:
        for index, session in enumerate(sessions):
            group.create_task(session.run(), name=f"loadgen:session-{index}")
    record.wall_s = loop.time() - started
    return record
