"""Pooled sockets on their own: sliding budgets, reuse rules, the choice of socket, the spare policy."""

from __future__ import annotations

import pytest

from tests.dataplane.fakes import FakeSocket
from ttsfleet.dataplane.settings import PoolSettings
from ttsfleet.dataplane.sockets import (
    PeakWindow,
    PooledSocket,
    PoolKey,
    SocketState,
    idle_budget,
    pick,
    spare_shortfall,
    spare_target,
)
from ttsfleet.protocol import Encoding, SlidingWindow, SocketLimits, SpeakOptions

KEY = PoolKey("aura-2-thalia-en", Encoding.LINEAR16, 24000, 1.0)
LIMITS = SocketLimits()


def _socket(socket_id: int = 1, key: PoolKey = KEY, now: float = 0.0, generation: int = 1) -> PooledSocket:
    return PooledSocket(socket_id, key, FakeSocket(), now, generation, LIMITS.window_s)


def test_a_key_round_trips_through_speak_options() -> None:
    options = SpeakOptions(model="aura-2-luna-en", encoding=Encoding.MULAW, sample_rate=8000, speed=1.2)
    assert PoolKey.of(options).options == options


def test_a_budget_window_forgets_what_left_the_window() -> None:
    window = SlidingWindow(60.0)
    window.add(0.0, 100)
    window.add(30.0, 50)
    assert window.sum(59.9) == 150
    assert window.sum(60.0) == 50
    assert window.sum(90.0) == 0


@pytest.mark.parametrize(
    ("state", "legal"),
    [
        pytest.param(SocketState.IDLE, {SocketState.LEASED, SocketState.CLOSED}, id="idle"),
        pytest.param(
            SocketState.LEASED,
            {SocketState.IDLE, SocketState.CLEARING, SocketState.RETIRING, SocketState.CLOSED},
            id="leased",
        ),
        pytest.param(SocketState.CLEARING, {SocketState.IDLE, SocketState.CLOSED}, id="clearing"),
        pytest.param(SocketState.RETIRING, {SocketState.CLOSED}, id="retiring"),
        pytest.param(SocketState.CLOSED, set(), id="closed"),
    ],
)
def test_only_legal_transitions_are_allowed(state: SocketState, legal: set[SocketState]) -> None:
    for new in SocketState:
        pooled = _socket()
        pooled.state = state
        if new in legal:
            pooled.transition(new)
            assert pooled.state is new
        else:
            with pytest.raises(RuntimeError, match="illegal transition"):
                pooled.transition(new)


@pytest.mark.parametrize(
    ("now", "generation", "is_open", "reusable"),
    [
        pytest.param(0.0, 1, True, True, id="fresh"),
        pytest.param(3239.0, 1, True, True, id="old-but-in-time"),
        pytest.param(3240.0, 1, True, False, id="too-old-to-finish-an-utterance"),
        pytest.param(0.0, 2, True, False, id="older-key"),
        pytest.param(0.0, 1, False, False, id="closed-upstream"),
    ],
)
def test_a_socket_is_reusable_only_open_current_and_young(
    now: float, generation: int, is_open: bool, reusable: bool
) -> None:
    pooled = _socket()
    pooled.socket.open = is_open  # type: ignore[attr-defined]
    assert pooled.is_reusable(now, generation, utterance_s=60, max_age_s=3300) is reusable


def test_charges_count_characters_and_one_flush() -> None:
    pooled = _socket()
    pooled.charge(5.0, 2000)
    assert pooled.last_used_at == 5.0
    assert pooled.fits(5.0, 400, LIMITS)
    assert not pooled.fits(5.0, 401, LIMITS)
    for _ in range(LIMITS.max_flushes_per_window - 1):
        pooled.charge(6.0, 0)
    assert not pooled.fits(6.0, 0, LIMITS)
    assert pooled.fits(66.0, 2400, LIMITS)


def test_pick_takes_the_idle_fitting_socket_with_most_budget_left() -> None:
    busy, spare, leased = _socket(1), _socket(2), _socket(3)
    busy.charge(0.0, 1500)
    spare.charge(0.0, 100)
    leased.state = SocketState.LEASED
    assert pick([busy, spare, leased], 10, 1.0, LIMITS) is spare
    assert pick([busy, leased], 1000, 1.0, LIMITS) is None
    assert pick([], 1, 1.0, LIMITS) is None


def test_pick_skips_unusable_sockets_and_asks_only_of_those_that_would_be_chosen() -> None:
    fresh, closed, spent = _socket(1), _socket(2), _socket(3)
    fresh.charge(0.0, 500)
    spent.charge(0.0, 1000)
    asked: list[int] = []

    def usable(pooled: PooledSocket) -> bool:
        asked.append(pooled.id)
        return pooled is not closed

    assert pick([spent, closed, fresh], 10, 1.0, LIMITS, usable) is fresh
    assert asked == [3, 2, 1]  # each beat the best so far
    asked.clear()
    assert pick([closed, fresh, spent], 10, 1.0, LIMITS, usable) is fresh
    assert asked == [2, 1]  # `spent` has less budget than `fresh`: never asked


def test_spare_shortfall_counts_idle_and_connecting_sockets() -> None:
    idle, leased = _socket(1), _socket(2)
    leased.state = SocketState.LEASED
    spares = idle_budget([idle, leased], now=1.0, limits=LIMITS).spares
    assert spares == 1
    assert spare_shortfall(spares, connecting=0, target=2) == 1
    assert spare_shortfall(spares, connecting=1, target=2) == 0
    assert spare_shortfall(spares, connecting=3, target=2) == 0
    assert spare_shortfall(0, connecting=0, target=0) == 0


def test_an_idle_socket_without_flushes_left_is_no_spare() -> None:
    spent = _socket(1)
    for _ in range(LIMITS.max_flushes_per_window):
        spent.charge(0.0, 1)
    assert idle_budget([spent], now=1.0, limits=LIMITS).spares == 0
    assert idle_budget([spent], now=61.0, limits=LIMITS).spares == 1


def test_an_idle_socket_without_characters_left_is_no_spare_though_it_has_flushes() -> None:
    spent = _socket(1)
    spent.charge(0.0, LIMITS.max_chars_per_window + 1)  # over its character budget
    budget = idle_budget([spent], now=1.0, limits=LIMITS)
    assert (budget.spares, budget.flushes_left) == (0, LIMITS.max_flushes_per_window - 1)


@pytest.mark.parametrize(
    ("peak_leased", "settings", "target"),
    [
        pytest.param(0, PoolSettings(), 1, id="idle-key-keeps-the-warm-minimum"),
        pytest.param(2, PoolSettings(), 1, id="small-peak-within-the-warm-minimum"),
        pytest.param(5, PoolSettings(), 3, id="half-the-peak-rounded-up"),
        pytest.param(20, PoolSettings(), 10, id="200-sessions-10-percent-speaking"),
        pytest.param(200, PoolSettings(), 16, id="capped-per-key"),
        pytest.param(200, PoolSettings(max_sockets=8), 8, id="capped-by-the-pod"),
        pytest.param(40, PoolSettings(spare_ratio=0.1), 4, id="no-float-round-up"),
        pytest.param(20, PoolSettings(spare_ratio=0), 1, id="ratio-off"),
        pytest.param(20, PoolSettings(warm_min_per_key=0, spare_ratio=0), 0, id="nothing-warm"),
        pytest.param(0, PoolSettings(warm_min_per_key=20), 20, id="warm-minimum-above-the-cap"),
    ],
)
def test_the_spare_target_follows_the_recent_peak(
    peak_leased: int, settings: PoolSettings, target: int
) -> None:
    assert spare_target(peak_leased, settings) == target


def test_a_peak_window_remembers_the_highest_level_held_within_the_window() -> None:
    window = PeakWindow(60.0)
    assert window.peak(0.0) == 0
    window.record(0.0, 3)
    window.record(10.0, 10)
    window.record(50.0, 2)  # 10 held from 10 s to 50 s
    window.record(55.0, 5)
    assert window.peak(100.0) == 10
    assert window.peak(110.0) == 10  # 10 still held at 50 s, the window's start
    assert window.peak(111.0) == 5
    assert window.peak(1000.0) == 5  # the latest level holds until the next record


def test_a_peak_window_keeps_few_levels() -> None:
    window = PeakWindow(60.0)
    for tick in range(1000):
        window.record(float(tick), tick % 7)
    assert window.peak(1000.0) == 6
    assert len(window._levels) <= 7
