"""Pooled sockets on their own: sliding budgets, reuse rules, the choice of socket, warm needs."""

from __future__ import annotations

import pytest

from tests.dataplane.fakes import FakeSocket
from ttsfleet.dataplane.sockets import (
    PooledSocket,
    PoolKey,
    SocketState,
    pick,
    warm_shortfall,
)
from ttsfleet.protocol import Encoding, SlidingWindow, SocketLimits, SpeakOptions

KEY = PoolKey("aura-2-thalia-en", Encoding.LINEAR16, 24000, 1.0)
OTHER = PoolKey("aura-2-thalia-en", Encoding.MULAW, 8000, 1.0)
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


def test_warm_shortfall_counts_idle_and_connecting_sockets_of_the_key() -> None:
    idle, leased, other = _socket(1), _socket(2), _socket(3, key=OTHER)
    leased.state = SocketState.LEASED
    sockets = [idle, leased, other]
    assert warm_shortfall(sockets, KEY, connecting=0, warm_min=2) == 1
    assert warm_shortfall(sockets, KEY, connecting=1, warm_min=2) == 0
    assert warm_shortfall(sockets, KEY, connecting=3, warm_min=2) == 0
    assert warm_shortfall(sockets, OTHER, connecting=0, warm_min=0) == 0
