"""Pooled upstream sockets: their key, lifecycle state, per-socket budgets, and which one to lease.

Pure: time, the key generation and the limits are passed in. Deepgram's per-socket limits (2400
characters and 20 Flushes a minute, PROTOCOL.md "Limits and close codes") are sliding windows here,
so the pool can pick a socket whose budget fits an utterance instead of meeting DATA-0001 or
EXCESSIVE_FLUSH upstream. The spare policy is here too: how many idle sockets a key keeps, from the
peak of its leased sockets over a recent window and from the leases that arrive while a spare connects,
and how much Flush budget it keeps ahead of the rate of new leases (a rising load spends the budget
before any peak of leased sockets shows it).
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ttsfleet.dataplane.seams import UpstreamSocket
from ttsfleet.dataplane.settings import PoolSettings
from ttsfleet.protocol import Encoding, SlidingWindow, SocketLimits, SpeakOptions


@dataclass(frozen=True, slots=True)
class PoolKey:
    """Every option fixed for an upstream socket's life (asyncapi.yml `/v1/speak` query): two utterances
    share a socket only when Deepgram would treat and bill them alike (`mip_opt_out` included)."""

    model: str
    encoding: Encoding
    sample_rate: int
    speed: float
    mip_opt_out: bool = False

    @classmethod
    def of(cls, options: SpeakOptions) -> PoolKey:
        return cls(options.model, options.encoding, options.sample_rate, options.speed, options.mip_opt_out)

    @property
    def options(self) -> SpeakOptions:
        return SpeakOptions(
            model=self.model,
            encoding=self.encoding,
            sample_rate=self.sample_rate,
            speed=self.speed,
            mip_opt_out=self.mip_opt_out,
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
    candidates: Iterable[PooledSocket],
    chars: int,
    now: float,
    limits: SocketLimits,
    usable: Callable[[PooledSocket], bool] = lambda _: True,
) -> PooledSocket | None:
    """The idle, `usable` socket that fits with the most budget left (load spreads away from DATA-0001
    and EXCESSIVE_FLUSH).

    `usable` is asked only of a socket that would beat the best so far: every lease passes here, and
    the answer for the others (whether the socket is still open, for one) cannot change the choice.
    """
    best: PooledSocket | None = None
    best_spent = (0, 0)
    max_chars = limits.max_chars_per_window - chars
    max_flushes = limits.max_flushes_per_window - 1
    for candidate in candidates:  # each window is summed once per socket
        if candidate.state is not SocketState.IDLE:
            continue
        spent = (candidate.chars.sum(now), candidate.flushes.sum(now))
        if (
            spent[0] <= max_chars
            and spent[1] <= max_flushes
            and (best is None or spent < best_spent)
            and usable(candidate)
        ):
            best, best_spent = candidate, spent
    return best


def is_busy(pooled: PooledSocket) -> bool:
    """Taken by an utterance, or still cleaning up after one: not available to the next."""
    return pooled.state in (SocketState.LEASED, SocketState.RETIRING, SocketState.CLEARING)


def spare_target(peak_leased: int, settings: PoolSettings, handshake_cover: int = 0) -> int:
    """Idle sockets to keep for a key whose busiest moment in `spare_window_s` had `peak_leased` leased.

    A share (`spare_ratio`) of that peak, or the sockets that cover the leases arriving while a spare
    connects (`handshake_cover`) when that is more, at most `max_spare_per_key`; never below
    `warm_min_per_key`, and never more than the pod may open (`max_sockets`).
    """
    adaptive = max(math.ceil(settings.spare_ratio * peak_leased - 1e-9), handshake_cover)
    return min(
        max(settings.warm_min_per_key, min(adaptive, settings.max_spare_per_key)), settings.max_sockets
    )


def handshake_cover(lease_rate_per_s: float, handshake_s: float) -> int:
    """Idle sockets that let every lease arriving while a replacement connects find one open.

    A spare taken is replaced one handshake later, so the leases of one handshake's time must find idle
    sockets already there: their expected count, plus three standard deviations of its Poisson spread
    (a burst of an agent crowd, not only its mean). The peak of leased sockets shows a rising load only
    once sockets are leased; the lease rate shows it within a few leases.
    """
    expected = lease_rate_per_s * handshake_s
    if expected <= 0:
        return 0
    if expected < 1:
        # Under one lease per handshake a second one rarely follows within it: the spread is no crowd,
        # and three deviations of it would hold a trickle's key at three idle sockets for nothing.
        return 1
    return math.ceil(expected + 3 * math.sqrt(expected) - 1e-9)


@dataclass(frozen=True, slots=True)
class IdleBudget:
    """What a key's idle sockets can take now, counted in one pass over them (`idle_budget`)."""

    spares: int  # idle sockets able to take an utterance: a Flush left in this window
    flushes_left: int  # Flushes they can still take in their current windows


def idle_budget(
    sockets: Iterable[PooledSocket], now: float, limits: SocketLimits, enough: IdleBudget | None = None
) -> IdleBudget:
    """The spares and Flushes left among one key's `sockets` (the pool's index of them). Only idle ones
    count: leased sockets are those with the most budget (leases go there first), and they hold it until
    their utterance ends, so counting it would hide that the idle ones are nearly spent.

    One pass, each window summed once, and it stops once both counts reach `enough` (the counts are then
    at least that): maintenance asks this after every lease and release, of every idle socket of the key
    (about a hundred at a thousand sessions), and a key with its spares needs only to know so.
    """
    spares = flushes = 0
    max_flushes, max_chars = limits.max_flushes_per_window, limits.max_chars_per_window
    for candidate in sockets:
        if candidate.state is not SocketState.IDLE:
            continue
        left = max_flushes - candidate.flushes.sum(now)
        if left > 0:
            flushes += left
            spares += candidate.chars.sum(now) <= max_chars
            if enough is not None and spares >= enough.spares and flushes >= enough.flushes_left:
                break
    return IdleBudget(spares, flushes)


def spare_shortfall(idle_spares: int, connecting: int, target: int) -> int:
    """How many sockets to open so that a key has `target` idle (or connecting) sockets able to take an
    utterance now; an idle socket whose Flush budget is spent for this window is no spare."""
    return max(0, target - idle_spares - connecting)


def runway_shortfall(
    flushes_left: int, connecting: int, lease_rate_per_s: float, lead_s: float, limits: SocketLimits
) -> int:
    """Sockets to open so that the key's Flush budget covers the leases expected in the next `lead_s`.

    Leases spread over the sockets with the most budget left, so a key's sockets run out of Flushes
    nearly together; counting idle sockets alone sees that only when they are spent, and the next
    utterances then wait for a handshake. A connecting socket brings a whole window's budget.
    """
    per_socket = limits.max_flushes_per_window
    deficit = runway_flushes(lease_rate_per_s, lead_s) - flushes_left - connecting * per_socket
    return max(0, math.ceil(deficit / per_socket))


def runway_flushes(lease_rate_per_s: float, lead_s: float) -> int:
    """The Flushes the leases expected in the next `lead_s` take."""
    return math.ceil(lease_rate_per_s * lead_s - 1e-9)


def sockets_to_open(
    sockets: Iterable[PooledSocket],
    connecting: int,
    peak_leased: int,
    lease_rate_per_s: float,
    handshake_s: float,
    now: float,
    settings: PoolSettings,
    limits: SocketLimits,
) -> int:
    """The pool's sizing decision for one key, given its `sockets`: enough idle sockets for the recent
    peak and for the leases of one handshake's time (`spare_target`), and enough Flush budget for the
    next `spare_lead_s` of leases (`runway_shortfall`)."""
    target = spare_target(peak_leased, settings, handshake_cover(lease_rate_per_s, handshake_s))
    # What the idle sockets must hold for both shortfalls below to be none: counting stops there.
    enough = IdleBudget(
        target - connecting,
        runway_flushes(lease_rate_per_s, settings.spare_lead_s) - connecting * limits.max_flushes_per_window,
    )
    idle = idle_budget(sockets, now, limits, enough)
    return max(
        spare_shortfall(idle.spares, connecting, target),
        runway_shortfall(idle.flushes_left, connecting, lease_rate_per_s, settings.spare_lead_s, limits),
    )


def flush_floor(flushes_per_minute: float, limits: SocketLimits) -> int:
    """The fewest sockets that carry `flushes_per_minute` within Deepgram's per-socket Flush budget."""
    per_minute = limits.max_flushes_per_window * 60.0 / limits.window_s
    return math.ceil(flushes_per_minute / per_minute - 1e-9)


class LeaseRate:
    """New leases per second: the highest rate over a few windows, so that a rising load shows within
    the shortest and a lull between bursts does not drop it before the longest has passed.

    A window counts once it holds `min_leases`, divided by the time they span (at least `min_span_s`),
    not by the whole window: a crowd that starts speaking shows at its rate after a few leases instead
    of growing into it over a window's length (by which time the first leases found no spare). A window
    with fewer does not count, so a quiet key's chance pair is not read as a crowd; the longest window's
    plain average always does. In a steady load the span is the window, and the figure its average.
    """

    def __init__(self, windows_s: tuple[float, ...], min_span_s: float, min_leases: int) -> None:
        """`windows_s` shortest first."""
        self._windows = [SlidingWindow(window_s) for window_s in windows_s]
        self._min_span_s = min_span_s
        self._min_leases = min_leases

    def record(self, now: float) -> None:
        for window in self._windows:
            window.add(now, 1)

    def per_second(self, now: float) -> float:
        longest = self._windows[-1]
        rate = longest.sum(now) / longest.window_s
        for window in self._windows:
            leases = window.sum(now)
            if leases >= self._min_leases:
                span_s = min(window.window_s, max(self._min_span_s, now - window.entries[0][0]))
                rate = max(rate, leases / span_s)
        return rate


class SessionUtterances:
    """The sessions of one key, and how many utterances a session starts a second.

    Assumed (`assumed_per_s`) at first, then learned from the key's own sessions within `window_s`, as
    a moving average of utterances over session-seconds, folded in at least a second at a time. The
    sessions times that rate is the lease rate they will make, known as soon as they connect, before
    any of them speaks.
    """

    def __init__(self, assumed_per_s: float, window_s: float, now: float) -> None:
        self._per_s = assumed_per_s
        self._window_s = window_s
        self._sessions = 0
        self._step_began = now
        self._counted_to = now
        self._session_s = 0.0  # session-seconds since `_step_began`
        self._utterances = 0  # utterances since `_step_began`

    @property
    def sessions(self) -> int:
        return self._sessions

    @property
    def per_session_s(self) -> float:
        return self._per_s

    def opened(self, now: float) -> None:
        self._count_to(now)
        self._sessions += 1

    def closed(self, now: float) -> None:
        self._count_to(now)
        self._sessions = max(0, self._sessions - 1)

    def uttered(self) -> None:
        self._utterances += 1

    def expected_rate(self, now: float) -> float:
        """Utterances a second the key's sessions will start, at the learned (or assumed) rate."""
        self._count_to(now)
        if now - self._step_began >= 1.0:
            if self._session_s > 0:
                # A moving average whose memory is a quarter of the window: within one window the
                # assumption weighs 2 %, yet a second's burst moves it only a little.
                weight = min(1.0, 4 * (now - self._step_began) / self._window_s)
                self._per_s += weight * (self._utterances / self._session_s - self._per_s)
            self._step_began, self._session_s, self._utterances = now, 0.0, 0
        return self._sessions * self._per_s

    def _count_to(self, now: float) -> None:
        self._session_s += self._sessions * max(0.0, now - self._counted_to)
        self._counted_to = now


class HandshakeTime:
    """How long opening an upstream socket takes: the slowest of the last `samples` handshakes.

    The slowest rather than the mean, because a spare must be open before the lease that needs it, and a
    loaded pod's handshakes slow down together. Before any handshake it is `assumed_s`.
    """

    def __init__(self, assumed_s: float, samples: int) -> None:
        self._assumed_s = assumed_s
        self._recent: collections.deque[float] = collections.deque(maxlen=samples)

    def record(self, seconds: float) -> None:
        self._recent.append(seconds)

    @property
    def seconds(self) -> float:
        return max(self._recent) if self._recent else self._assumed_s


@dataclass(slots=True)
class _Level:
    since: float
    value: int
    until: float  # when a later record replaced it; infinity while it is the latest


class PeakWindow:
    """The highest value a count held at any moment of the last `window_s` seconds.

    A recorded value holds until the next record. Kept as levels falling from front to back (a level
    followed by a higher one can never be the peak again), so recording and asking are O(1) amortized.
    """

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._levels: collections.deque[_Level] = collections.deque()

    def record(self, now: float, value: int) -> None:
        if self._levels:
            self._levels[-1].until = now
        while self._levels and self._levels[-1].value <= value:
            self._levels.pop()
        self._levels.append(_Level(now, value, math.inf))

    def peak(self, now: float) -> int:
        while self._levels and self._levels[0].until < now - self._window_s:
            self._levels.popleft()
        return self._levels[0].value if self._levels else 0
