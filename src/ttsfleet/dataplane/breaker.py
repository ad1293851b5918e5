"""A circuit breaker per upstream: closed, open, half-open; pure state fed outcomes and time.

Consecutive failures open it; after `open_s` a bounded number of probes may pass; one success closes
it, one failure reopens it. Time comes from an injected clock, so tests move it by hand.
"""

from __future__ import annotations

from ttsfleet.contracts import BreakerState
from ttsfleet.dataplane.errors import UpstreamError
from ttsfleet.dataplane.seams import Clock


class CircuitBreaker:
    """Decides whether an attempt on one upstream may start."""

    def __init__(
        self, clock: Clock, failure_threshold: int, open_s: float, half_open_max_probes: int
    ) -> None:
        self._clock = clock
        self._failure_threshold = failure_threshold
        self._open_s = open_s
        self._max_probes = half_open_max_probes
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self.transitions = 0

    @property
    def state(self) -> BreakerState:
        """The state now: an open breaker turns half-open once `open_s` has passed."""
        if self._state is BreakerState.OPEN and self._clock.monotonic() - self._opened_at >= self._open_s:
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """Whether an attempt may start now; in half-open, takes one of the probe slots."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._probes < self._max_probes:
            self._probes += 1
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self._failure_threshold
        ):
            self._transition(BreakerState.OPEN)

    def record_error(self, error: UpstreamError) -> None:
        """A failed attempt: a failure when it says something about the upstream's health, else a release."""
        if error.counts_against_breaker:
            self.record_failure()
        else:
            self.release_probe()

    def release_probe(self) -> None:
        """An allowed attempt ended without telling anything about the upstream (cancelled, say)."""
        if self._state is BreakerState.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def _transition(self, new: BreakerState) -> None:
        if new is self._state:
            raise RuntimeError(f"breaker is already {new}")
        self._state = new
        self._probes = 0
        self.transitions += 1
        if new is BreakerState.OPEN:
            self._opened_at = self._clock.monotonic()
        elif new is BreakerState.CLOSED:
            self._failures = 0
