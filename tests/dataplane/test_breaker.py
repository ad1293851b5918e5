"""The circuit breaker's states and transitions, on a clock moved by hand."""

from __future__ import annotations

from tests.dataplane.fakes import ManualClock
from ttsfleet.contracts import BreakerState
from ttsfleet.dataplane.breaker import CircuitBreaker


def _breaker(clock: ManualClock, probes: int = 1) -> CircuitBreaker:
    return CircuitBreaker(clock, failure_threshold=3, open_s=10.0, half_open_max_probes=probes)


def test_consecutive_failures_open_the_breaker_and_refuse_attempts() -> None:
    breaker = _breaker(ManualClock())
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_failure_count() -> None:
    breaker = _breaker(ManualClock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_after_open_s_a_bounded_number_of_probes_pass() -> None:
    clock = ManualClock()
    breaker = _breaker(clock, probes=2)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(9.99)
    assert not breaker.allow()
    clock.advance(0.01)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() and breaker.allow()
    assert not breaker.allow()


def test_a_probe_success_closes_and_a_probe_failure_reopens() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(10)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_a_released_probe_frees_its_slot() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release_probe()
    assert breaker.allow()
