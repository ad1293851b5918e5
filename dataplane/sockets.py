"""Pooled upstream sockets: their key, lifecycle state, per-socket budgets, and which one to lease.

Pure: time, the key generation and the limits are passed in. Deepgram's per-socket limits (2400
characters and 20 Flushes a minute, PROTOCOL.md "Limits and close codes") are sliding windows here,
so the pool can pick a socket whose budget fits an utterance instead of meeting DATA-0001 or
EXCESSIVE_FLUSH upstream.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ttsfleet.dataplane.seams import UpstreamSocket
from ttsfleet.protocol import Encoding, SlidingWindow, SocketLimits, SpeakOptions


@dataclass(frozen=True, slots=True)
class PoolKey:
    """What fixes an upstream socket's voice and format (PROTOCOL.md: fixed for the socket)."""

    model: str
    encoding: Encoding
    sample_rate: int
    speed: float

    @classmethod
    def of(cls, options: SpeakOptions) -> PoolKey:
        return cls(options.model, options.encoding, options.sample_rate, options.speed)

    @property
    def options(self) -> SpeakOptions:
        return SpeakOptions(
            model=self.model, encoding=self.encoding, sample_rate=self.sample_rate, speed=self.speed
        )


class SocketState(enum.Enum):
    """A pooled socket's lifecycle; `PooledSocket.transition` is the only way to change it."""

    IDLE = "idle"
    LEASED = "leased"
    CLEARING = "clearing"  # released mid-utterance: a Clear is on its way, audio is drained
    RETIRING = "retiring"  # leased, but closes on release (old key, too old)
    CLOSED = "closed"


_TRANSITIONS: dict[SocketState, frozenset[SocketState]] = {
    SocketState.IDLE: frozenset({SocketState.LEASED, SocketState.CLOSED}),
    SocketState.LEASED: frozenset(
        {SocketState.IDLE, SocketState.CLEARING, SocketState.RETIRING, SocketState.CLOSED}
    ),
    SocketState.CLEARING: frozenset({SocketState.IDLE, SocketState.CLOSED}),
    SocketState.RETIRING: frozenset({SocketState.CLOSED}),
    SocketState.CLOSED: frozenset(),
}


class ReleaseOutcome(enum.Enum):
    """How an utterance left its socket."""

    CLEAN = "clean"  # Flushed arrived: the socket is quiet
    DIRTY = "dirty"  # abandoned mid-utterance: Clear it before reuse
    BROKEN = "broken"  # failed: close it


class PooledSocket:
    """An upstream socket with its state, age, key generation and per-socket budgets."""

    def __init__(
        self,
        socket_id: int,
        key: PoolKey,
        socket: UpstreamSocket,
        now: float,
        generation: int,
        window_s: float,
    ) -> None:
        self.id = socket_id
        self.key = key
        self.socket = socket
        self.opened_at = now
        self.last_used_at = now
        self.generation = generation
        self.state = SocketState.IDLE
        self.chars = SlidingWindow(window_s)
        self.flushes = SlidingWindow(window_s)
        self.pinging = False

    def transition(self, new: SocketState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(
                f"upstream socket {self.id}: illegal transition {self.state.value} → {new.value}"
            )
        self.state = new

    def is_reusable(self, now: float, generation: int, utterance_s: float, max_age_s: float) -> bool:
        """Open, opened with the current key, and young enough to finish a whole utterance in time."""
        return (
            self.socket.is_open
            and self.generation == generation
            and now - self.opened_at + utterance_s < max_age_s
        )

    def fits(self, now: float, chars: int, limits: SocketLimits) -> bool:
        """Whether `chars` more characters and one more Flush stay within this socket's budgets."""
        return (
            self.chars.sum(now) + chars <= limits.max_chars_per_window
            and self.flushes.sum(now) + 1 <= limits.max_flushes_per_window
        )

    def charge(self, now: float, chars: int) -> None:
        """Count an utterance of `chars` characters and its Flush against the budgets."""
        self.chars.add(now, chars)
        self.flushes.add(now, 1)
        self.last_used_at = now


def pick(
    candidates: Iterable[PooledSocket], chars: int, now: float, limits: SocketLimits
) -> PooledSocket | None:
    """The idle socket that fits with the most budget left (load spreads away from DATA-0001 and
    EXCESSIVE_FLUSH)."""
    fitting = [s for s in candidates if s.state is SocketState.IDLE and s.fits(now, chars, limits)]
    return min(fitting, key=lambda s: (s.chars.sum(now), s.flushes.sum(now)), default=None)


def warm_shortfall(sockets: Iterable[PooledSocket], key: PoolKey, connecting: int, warm_min: int) -> int:
    """How many sockets to open so that `key` has its warm minimum of idle (or connecting) sockets."""
    idle = sum(s.key == key and s.state is SocketState.IDLE for s in sockets)
    return max(0, warm_min - idle - connecting)
