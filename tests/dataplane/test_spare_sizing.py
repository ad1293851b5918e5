"""The pool's sizing decision replayed against lease traces: spares must be open before utterances need them.

The replay is the pool's policy without I/O: leases pick sockets as the pool does (`sockets.pick`), hold
them for an utterance, and every lease asks `sockets_to_open` how many sockets to open in the background,
which become usable one handshake later. A lease that finds no socket with budget waits for a handshake
of its own: those are the utterances that would pay ~250 ms before their first byte.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.dataplane.fakes import FakeSocket
from ttsfleet.dataplane.pool import LEASE_RATE_MIN_LEASES, LEASE_RATE_MIN_SPAN_S, LEASE_RATE_WINDOWS_S
from ttsfleet.dataplane.settings import PoolSettings
from ttsfleet.dataplane.sockets import (
    HandshakeTime,
    IdleBudget,
    LeaseRate,
    PeakWindow,
    PooledSocket,
    PoolKey,
    SessionUtterances,
    SocketState,
    flush_floor,
    handshake_cover,
    idle_budget,
    is_busy,
    pick,
    runway_shortfall,
    sockets_to_open,
    spare_shortfall,
    spare_target,
)
from ttsfleet.protocol import Encoding, SocketLimits

KEY = PoolKey("aura-2-thalia-en", Encoding.LINEAR16, 24000, 1.0)
LIMITS = SocketLimits()
HANDSHAKE_S = 0.25
HOLD_S = 0.6  # first byte + audio streamed at 4x real time: what a 2 s sentence keeps a socket busy
CHARS = 40


def rising_then_steady(seed: int, top_rate: float, ramp_s: float, total_s: float) -> Iterator[float]:
    """Random (Poisson) lease times at a rate rising linearly from nothing to `top_rate` over `ramp_s`,
    then steady: agents of a crowd joining over one conversation cycle."""
    draw = random.Random(seed)
    now = 0.0
    while now < total_s:
        now += draw.expovariate(top_rate)
        if draw.random() < min(1.0, now / ramp_s):
            yield now


@dataclass
class Replay:
    # When a lease found no idle socket with budget, and how long it waited: for a spare already
    # connecting (the rest of its handshake), or for a socket opened on demand (a whole handshake).
    waits: list[tuple[float, float]] = field(default_factory=list)
    leases: int = 0
    peak_open: int = 0

    def waited_longer_than(self, seconds: float, after: float = 0.0) -> list[float]:
        return [at for at, waited in self.waits if waited > seconds and at > after]


def replay(lease_times: Iterator[float], settings: PoolSettings, *, anticipate: bool = True) -> Replay:
    """`anticipate=False` replays the sizing before spares covered a handshake's worth of leases: no
    handshake cover, and a lease rate that grows into a rising load over its whole short window."""
    sockets: list[PooledSocket] = [PooledSocket(0, KEY, FakeSocket(), 0.0, 1, LIMITS.window_s)]
    connecting: list[float] = []  # when spares still connecting become usable (a heap)
    releases: list[tuple[float, int]] = []
    peaks = PeakWindow(settings.spare_window_s)
    rate = (
        LeaseRate(LEASE_RATE_WINDOWS_S, LEASE_RATE_MIN_SPAN_S, LEASE_RATE_MIN_LEASES)
        if anticipate
        else LeaseRate((2.0, 10.0), min_span_s=10.0, min_leases=1)  # a span of 10 s: the plain average
    )
    handshake_s = HANDSHAKE_S if anticipate else 0.0
    result = Replay()

    def advance(now: float) -> None:
        while connecting and connecting[0] <= now:
            opened_at = heapq.heappop(connecting)
            sockets.append(PooledSocket(len(sockets), KEY, FakeSocket(), opened_at, 1, LIMITS.window_s))
        while releases and releases[0][0] <= now:
            sockets[heapq.heappop(releases)[1]].state = SocketState.IDLE

    for now in lease_times:
        advance(now)
        chosen = pick(sockets, CHARS, now, LIMITS)
        start = now
        if chosen is None:
            # As `Pool.lease`: a spare on its way is waited for; with none, a socket opens for this lease.
            start = heapq.heappop(connecting) if connecting else now + HANDSHAKE_S
            result.waits.append((now, start - now))
            chosen = PooledSocket(len(sockets), KEY, FakeSocket(), start, 1, LIMITS.window_s)
            sockets.append(chosen)
        chosen.state = SocketState.LEASED
        chosen.charge(now, CHARS)
        heapq.heappush(releases, (start + HOLD_S, chosen.id))
        rate.record(now)
        peaks.record(now, sum(is_busy(s) for s in sockets))
        result.leases += 1
        wanted = sockets_to_open(
            sockets,
            len(connecting),
            peaks.peak(now),
            rate.per_second(now),
            handshake_s,
            now,
            settings,
            LIMITS,
        )
        for _ in range(wanted):
            heapq.heappush(connecting, now + HANDSHAKE_S)
        result.peak_open = max(result.peak_open, len(sockets) + len(connecting))
    return result


def thousand_agents(seed: int) -> Iterator[float]:
    """1,000 agents at 10 % speaking (50 utterances a second) joining over 10 s, for 40 s in all."""
    return rising_then_steady(seed, top_rate=50.0, ramp_s=RAMP_S, total_s=40.0)


RAMP_S = 10.0
SEEDS = [pytest.param(seed, id=f"seed-{seed}") for seed in range(3)]


@pytest.mark.parametrize("seed", SEEDS)
def test_spares_that_follow_only_the_peak_leave_utterances_waiting_when_the_budget_runs_out(
    seed: int,
) -> None:
    # The sizing before the lead on the lease rate: leases spread over the sockets, whose Flush budgets
    # then run out together once the load has been high for a while.
    result = replay(thousand_agents(seed), PoolSettings(spare_lead_s=0), anticipate=False)
    assert result.waited_longer_than(0.0, after=RAMP_S)


@pytest.mark.parametrize("seed", SEEDS)
def test_spares_ahead_of_the_lease_rate_leave_no_utterance_waiting_at_full_load(seed: int) -> None:
    settings = PoolSettings()
    result = replay(thousand_agents(seed), settings)
    assert result.waited_longer_than(0.0, after=RAMP_S) == []
    assert len(result.waits) <= result.leases / 200  # the ramp's bursts: well under the 1 % of a p99
    # The price: at most the Flushes kept in hand (50 leases a second for spare_lead_s) in sockets
    # above what the sizing without any lead opened on the same trace.
    trailing = replay(thousand_agents(seed), PoolSettings(spare_lead_s=0), anticipate=False)
    in_hand = math.ceil(50 * settings.spare_lead_s / LIMITS.max_flushes_per_window)
    assert result.peak_open <= trailing.peak_open + in_hand


def crowd_starting_at_once(seed: int, ramp_s: float) -> Iterator[float]:
    """1,000 agents connected before any speaks (a cold pod behind a Service that just got them all):
    50 utterances a second within `ramp_s`, for 30 s."""
    return rising_then_steady(seed, top_rate=50.0, ramp_s=ramp_s, total_s=30.0)


STEEP = [pytest.param(ramp_s, id=f"ramp-{ramp_s:g}s") for ramp_s in (0.5, 1.0, 2.0)]
P99_BOUND_S = 0.005  # issue 19: at most 5 ms added at p99, so under 1 % of leases may wait longer


@pytest.mark.parametrize("ramp_s", STEEP)
def test_a_crowd_that_starts_at_once_waits_for_half_as_many_handshakes_as_before(ramp_s: float) -> None:
    settings = PoolSettings()
    before = [replay(crowd_starting_at_once(seed, ramp_s), settings, anticipate=False) for seed in range(6)]
    after = [replay(crowd_starting_at_once(seed, ramp_s), settings) for seed in range(6)]
    waited_before = sum(len(run.waited_longer_than(P99_BOUND_S)) for run in before)
    waited_after = sum(len(run.waited_longer_than(P99_BOUND_S)) for run in after)
    assert waited_after * 2 <= waited_before, (waited_before, waited_after)
    # The leases that still wait are the first few of the onset, before any rate could show.
    assert all(len(run.waited_longer_than(P99_BOUND_S, after=ramp_s + 1)) <= 2 for run in after)
    assert waited_after < sum(run.leases for run in after) / 100
    # Covering the handshake opens no more sockets than waiting for on-demand ones did.
    assert max(run.peak_open for run in after) <= max(run.peak_open for run in before)


@pytest.mark.parametrize(
    ("rate", "at_most"),
    [pytest.param(0.1, 3, id="one-lease-in-ten-seconds"), pytest.param(1.0, 14, id="one-lease-a-second")],
)
def test_a_quiet_key_is_not_read_as_a_crowd(rate: float, at_most: int) -> None:
    # A chance pair of leases is no crowd (the sizing before the handshake cover opened 3 and 8 sockets
    # on these traces): one lease in ten seconds opens no more than it did. At one a second, bursts of
    # three in a quarter second do read as a crowd for a moment, which costs up to 6 sockets more over
    # ten minutes.
    result = replay(rising_then_steady(0, top_rate=rate, ramp_s=0.01, total_s=600.0), PoolSettings())
    assert result.peak_open <= at_most
    assert result.waited_longer_than(P99_BOUND_S) == []


@pytest.mark.parametrize(
    ("rate", "handshake_s", "cover"),
    [
        pytest.param(0.0, 0.25, 0, id="no-leases"),
        pytest.param(2.0, 0.25, 1, id="a-trickle-keeps-one"),
        pytest.param(4.0, 0.25, 4, id="one-per-handshake-and-three-sigma"),
        pytest.param(50.0, 0.25, 24, id="a-thousand-agents"),
        pytest.param(50.0, 0.15, 16, id="a-faster-handshake-needs-fewer"),
    ],
)
def test_the_handshake_cover_is_the_leases_of_one_handshake_and_their_spread(
    rate: float, handshake_s: float, cover: int
) -> None:
    assert handshake_cover(rate, handshake_s) == cover


def test_the_handshake_time_is_the_slowest_recent_one() -> None:
    times = HandshakeTime(assumed_s=0.25, samples=3)
    assert times.seconds == 0.25
    for seconds in (0.1, 0.4, 0.2, 0.15):
        times.record(seconds)
    assert times.seconds == 0.4
    times.record(0.1)  # 0.4 has left the last three
    assert times.seconds == 0.2


@pytest.mark.parametrize(
    ("flushes", "connecting", "rate", "lead_s", "to_open"),
    [
        pytest.param(100, 0, 50.0, 2.0, 0, id="budget-covers-the-lead"),
        pytest.param(99, 0, 50.0, 2.0, 1, id="one-flush-short-opens-one"),
        pytest.param(40, 0, 50.0, 2.0, 3, id="sixty-short-opens-three"),
        pytest.param(40, 3, 50.0, 2.0, 0, id="connecting-sockets-bring-their-budget"),
        pytest.param(0, 0, 0.0, 2.0, 0, id="no-leases-no-runway"),
        pytest.param(0, 0, 50.0, 0.0, 0, id="lead-off"),
    ],
)
def test_the_runway_shortfall_counts_whole_sockets_of_flushes(
    flushes: int, connecting: int, rate: float, lead_s: float, to_open: int
) -> None:
    assert runway_shortfall(flushes, connecting, rate, lead_s, LIMITS) == to_open


def test_flushes_left_counts_what_idle_sockets_can_take_now() -> None:
    idle, leased, retiring = (PooledSocket(n, KEY, FakeSocket(), 0.0, 1, 60.0) for n in range(3))
    for _ in range(5):
        idle.charge(1.0, CHARS)
    leased.state = SocketState.LEASED
    retiring.state = SocketState.RETIRING
    assert idle_budget([idle, leased, retiring], 2.0, LIMITS).flushes_left == 15
    assert idle_budget([idle], 61.0, LIMITS).flushes_left == 20  # the window slid past the charges


def test_the_lease_rate_sees_a_rise_within_the_short_window_and_keeps_a_lull_for_the_long_one() -> None:
    rate = LeaseRate((2.0, 10.0), min_span_s=10.0, min_leases=1)
    for tick in range(20):
        rate.record(tick * 0.5)  # 2 a second for 10 s
    for tick in range(40):
        rate.record(10.0 + tick * 0.05)  # then 20 a second for 2 s
    assert rate.per_second(11.99) == pytest.approx(20.0)
    assert rate.per_second(15.0) == pytest.approx((9 + 40) / 10)  # quiet since 12 s: the long window keeps it


def test_the_lease_rate_of_a_crowd_starting_shows_after_a_few_leases() -> None:
    rate = LeaseRate((0.5, 2.0), min_span_s=0.25, min_leases=3)
    rate.record(0.0)
    rate.record(0.01)
    assert rate.per_second(0.02) == pytest.approx(2 / 2.0), "a pair is no crowd: the longest window's average"
    for tick in range(2, 10):
        rate.record(tick * 0.02)  # 50 a second since 0 s
    assert rate.per_second(0.2) == pytest.approx(10 / 0.25), "the span is at least min_span_s"
    for tick in range(10, 25):
        rate.record(tick * 0.02)
    assert rate.per_second(0.5) == pytest.approx(24 / 0.48)  # the leases since 0.02 s over their span


@pytest.mark.parametrize(
    ("flushes_per_minute", "floor"),
    [pytest.param(3000, 150, id="1000-agents"), pytest.param(3001, 151, id="rounds-up"), pytest.param(0, 0)],
)
def test_the_flush_floor_is_the_flushes_a_minute_over_twenty(flushes_per_minute: int, floor: int) -> None:
    assert flush_floor(flushes_per_minute, LIMITS) == floor


def test_connected_sessions_expect_the_assumed_rate_until_their_own_is_learned() -> None:
    sessions = SessionUtterances(assumed_per_s=1 / 20, window_s=60.0, now=0.0)
    for _ in range(1000):
        sessions.opened(0.0)
    assert sessions.expected_rate(0.0) == pytest.approx(50.0), "a crowd connected: 50 utterances a second"
    # They turn out to speak a tenth as often: one utterance a second from the thousand, for a minute.
    for second in range(1, 61):
        sessions.uttered()
        sessions.expected_rate(float(second))
    assert sessions.per_session_s < 2 / 1000, "learned within the window"
    assert sessions.expected_rate(61.0) < 2.0


def test_sessions_that_leave_stop_counting() -> None:
    sessions = SessionUtterances(assumed_per_s=1 / 20, window_s=60.0, now=0.0)
    sessions.opened(0.0)
    sessions.opened(0.0)
    sessions.closed(0.5)
    sessions.closed(0.6)
    sessions.closed(0.7)  # a close more than it opened never goes negative
    assert sessions.sessions == 0
    assert sessions.expected_rate(5.0) == 0.0


def test_counting_stops_once_the_idle_sockets_hold_enough() -> None:
    fresh = [PooledSocket(n, KEY, FakeSocket(), 0.0, 1, 60.0) for n in range(10)]
    enough = IdleBudget(spares=2, flushes_left=30)
    assert idle_budget(fresh, 1.0, LIMITS, enough) == IdleBudget(spares=2, flushes_left=40)
    assert idle_budget(fresh, 1.0, LIMITS) == IdleBudget(spares=10, flushes_left=200)


@pytest.mark.parametrize("seed", range(40))
def test_the_sizing_that_stops_counting_decides_as_a_whole_count_would(seed: int) -> None:
    draw = random.Random(seed)
    sockets = []
    for n in range(draw.randrange(0, 120)):
        pooled = PooledSocket(n, KEY, FakeSocket(), 0.0, 1, LIMITS.window_s)
        for _ in range(draw.randrange(0, 21)):
            pooled.charge(draw.uniform(0.0, 59.0), draw.choice((40, 400, 1200)))
        pooled.state = draw.choice((SocketState.IDLE, SocketState.IDLE, SocketState.LEASED))
        sockets.append(pooled)
    connecting, peak = draw.randrange(0, 6), draw.randrange(0, 100)
    rate, handshake_s, now = draw.uniform(0.0, 80.0), draw.uniform(0.05, 0.5), draw.uniform(59.0, 90.0)
    settings = PoolSettings()

    whole = idle_budget(sockets, now, LIMITS)
    target = spare_target(peak, settings, handshake_cover(rate, handshake_s))
    expected = max(
        spare_shortfall(whole.spares, connecting, target),
        runway_shortfall(whole.flushes_left, connecting, rate, settings.spare_lead_s, LIMITS),
    )
    assert sockets_to_open(sockets, connecting, peak, rate, handshake_s, now, settings, LIMITS) == expected
