"""Retry decisions per error class, and backoff with full jitter within its bounds."""

from __future__ import annotations

import random

import pytest

from ttsfleet.dataplane import errors
from ttsfleet.dataplane.retrying import RetryPolicy


def _policy(seed: int = 7) -> RetryPolicy:
    return RetryPolicy(max_attempts=3, base_delay_s=0.1, max_delay_s=1.0, rng=random.Random(seed))


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        pytest.param(errors.UpstreamUnavailable("x"), True, id="transient"),
        pytest.param(errors.UpstreamTimeout("x"), True, id="timeout"),
        pytest.param(errors.UpstreamRateLimited("x"), True, id="rate-limited"),
        pytest.param(errors.UpstreamProtocolError("x"), True, id="upstream-protocol"),
        pytest.param(errors.UpstreamAuthFailed("x"), False, id="auth"),
        pytest.param(errors.UpstreamRejected("x"), False, id="client-error"),
    ],
)
def test_only_retryable_classes_are_retried(error: errors.UpstreamError, retried: bool) -> None:
    assert _policy().should_retry(error, attempts_made=1, audio_sent=False) is retried


def test_nothing_is_retried_once_audio_reached_the_client() -> None:
    assert not _policy().should_retry(errors.UpstreamUnavailable("x"), attempts_made=1, audio_sent=True)


def test_attempts_stop_at_the_maximum() -> None:
    policy = _policy()
    assert policy.should_retry(errors.UpstreamUnavailable("x"), attempts_made=2, audio_sent=False)
    assert not policy.should_retry(errors.UpstreamUnavailable("x"), attempts_made=3, audio_sent=False)


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 0.1), (2, 0.2), (3, 0.4), (5, 1.0), (9, 1.0)])
def test_delays_are_full_jitter_below_a_doubling_capped_ceiling(attempts: int, ceiling: float) -> None:
    policy = _policy()
    delays = [policy.delay_s(errors.UpstreamUnavailable("x"), attempts) for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread over the whole range


def test_rate_limits_back_off_longer() -> None:
    policy = _policy()
    delays = [policy.delay_s(errors.UpstreamRateLimited("x"), 1) for _ in range(500)]
    assert max(delays) > 0.1 and max(delays) <= 0.4
