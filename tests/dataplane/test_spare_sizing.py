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
from ttsfleet.dataplane.settings import PoolSettings
from ttsfleet.dataplane.sockets import (
    LeaseRate,
    PeakWindow,
    PooledSocket,
    PoolKey,
    SocketState,
    flush_floor,
    flushes_left,
    is_busy,
    pick,
    runway_shortfall,
    sockets_to_open,
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
    waits: list[float] = field(default_factory=list)  # when a lease found no socket with budget
    leases: int = 0
    peak_open: int = 0


def replay(lease_times: Iterator[float], settings: PoolSettings) -> Replay:
    sockets: list[PooledSocket] = [PooledSocket(0, KEY, FakeSocket(), 0.0, 1, LIMITS.window_s)]
    ready: list[float] = []  # when sockets still connecting become usable (a heap)
    releases: list[tuple[float, int]] = []
    peaks = PeakWindow(settings.spare_window_s)
    rate = LeaseRate(2.0, 10.0)
    result = Replay()

    def advance(now: float) -> None:
        while ready and ready[0] <= now:
            opened_at = heapq.heappop(ready)
            sockets.append(PooledSocket(len(sockets), KEY, FakeSocket(), opened_at, 1, LIMITS.window_s))
        while releases and releases[0][0] <= now:
            sockets[heapq.heappop(releases)[1]].state = SocketState.IDLE

    for now in lease_times:
        advance(now)
        chosen = pick(sockets, CHARS, now, LIMITS)
        start = now
        if chosen is None:
            result.waits.append(now)
            start = now + HANDSHAKE_S  # an on-demand socket, leased the moment it opens
            chosen = PooledSocket(len(sockets), KEY, FakeSocket(), start, 1, LIMITS.window_s)
            sockets.append(chosen)
        chosen.state = SocketState.LEASED
        chosen.charge(now, CHARS)
        heapq.heappush(releases, (start + HOLD_S, chosen.id))
        rate.record(now)
        peaks.record(now, sum(is_busy(s) for s in sockets))
        result.leases += 1
        wanted = sockets_to_open(
            sockets, KEY, len(ready), peaks.peak(now), rate.per_second(now), now, settings, LIMITS
        )
        for _ in range(wanted):
            heapq.heappush(ready, now + HANDSHAKE_S)
        result.peak_open = max(result.peak_open, len(sockets) + len(ready))
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
    # The old sizing (no lead on the lease rate): leases spread over the sockets, whose Flush budgets
    # then run out together once the load has been high for a while.
    result = replay(thousand_agents(seed), PoolSettings(spare_lead_s=0))
    assert [at for at in result.waits if at > RAMP_S]


@pytest.mark.parametrize("seed", SEEDS)
def test_spares_ahead_of_the_lease_rate_leave_no_utterance_waiting_at_full_load(seed: int) -> None:
    settings = PoolSettings()
    result = replay(thousand_agents(seed), settings)
    assert [at for at in result.waits if at > RAMP_S] == []
    assert len(result.waits) <= result.leases / 200  # the ramp's bursts: well under the 1 % of a p99
    # The price: at most the Flushes kept in hand (50 leases a second for spare_lead_s) in sockets
    # above what the old sizing opened on the same trace.
    trailing = replay(thousand_agents(seed), PoolSettings(spare_lead_s=0))
    in_hand = math.ceil(50 * settings.spare_lead_s / LIMITS.max_flushes_per_window)
    assert result.peak_open <= trailing.peak_open + in_hand


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
    idle, leased, retiring, other = (PooledSocket(n, KEY, FakeSocket(), 0.0, 1, 60.0) for n in range(4))
    other.key = PoolKey("aura-2-luna-en", Encoding.LINEAR16, 24000, 1.0)
    for _ in range(5):
        idle.charge(1.0, CHARS)
    leased.state = SocketState.LEASED
    retiring.state = SocketState.RETIRING
    assert flushes_left([idle, leased, retiring, other], KEY, 2.0, LIMITS) == 15
    assert flushes_left([idle], KEY, 61.0, LIMITS) == 20  # the window slid past the charges


def test_the_lease_rate_sees_a_rise_within_the_short_window_and_keeps_a_lull_for_the_long_one() -> None:
    rate = LeaseRate(2.0, 10.0)
    for tick in range(20):
        rate.record(tick * 0.5)  # 2 a second for 10 s
    for tick in range(40):
        rate.record(10.0 + tick * 0.05)  # then 20 a second for 2 s
    assert rate.per_second(11.99) == pytest.approx(20.0)
    assert rate.per_second(15.0) == pytest.approx((9 + 40) / 10)  # quiet since 12 s: the long window keeps it


@pytest.mark.parametrize(
    ("flushes_per_minute", "floor"),
    [pytest.param(3000, 150, id="1000-agents"), pytest.param(3001, 151, id="rounds-up"), pytest.param(0, 0)],
)
def test_the_flush_floor_is_the_flushes_a_minute_over_twenty(flushes_per_minute: int, floor: int) -> None:
    assert flush_floor(flushes_per_minute, LIMITS) == floor
