"""Upstream failures classified by status and close frame, with the wire meaning each error carries."""

from __future__ import annotations

import pytest

from ttsfleet.dataplane import errors
from ttsfleet.dataplane.errors import ErrorClass


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        pytest.param(401, ErrorClass.AUTH, id="401"),
        pytest.param(403, ErrorClass.AUTH, id="403"),
        pytest.param(429, ErrorClass.RATE_LIMITED, id="429"),
        pytest.param(400, ErrorClass.CLIENT_ERROR, id="400"),
        pytest.param(413, ErrorClass.CLIENT_ERROR, id="413"),
        pytest.param(500, ErrorClass.TRANSIENT, id="500"),
        pytest.param(503, ErrorClass.TRANSIENT, id="503"),
        pytest.param(302, ErrorClass.UPSTREAM_PROTOCOL, id="302"),
    ],
)
def test_statuses_are_classified(status: int, error_class: ErrorClass) -> None:
    assert errors.error_for_status(status, "detail").error_class is error_class


@pytest.mark.parametrize(
    ("code", "reason", "error_class"),
    [
        pytest.param(1011, "NET-0000", ErrorClass.TRANSIENT, id="internal"),
        pytest.param(1011, "NET-0003", ErrorClass.TRANSIENT, id="too-old"),
        pytest.param(None, "", ErrorClass.TRANSIENT, id="dropped"),
        pytest.param(1008, "DATA-0001", ErrorClass.RATE_LIMITED, id="character-budget"),
        pytest.param(1008, "DATA-0000", ErrorClass.CLIENT_ERROR, id="bad-message"),
        pytest.param(1009, "BIG-0001", ErrorClass.CLIENT_ERROR, id="too-big"),
        pytest.param(1000, "", ErrorClass.UPSTREAM_PROTOCOL, id="normal-mid-utterance"),
    ],
)
def test_closes_are_classified(code: int | None, reason: str, error_class: ErrorClass) -> None:
    assert errors.error_for_close(code, reason).error_class is error_class


def test_only_upstream_health_counts_against_the_breaker() -> None:
    assert errors.UpstreamUnavailable("x").counts_against_breaker
    assert errors.UpstreamRateLimited("x").counts_against_breaker
    assert not errors.UpstreamAuthFailed("x").counts_against_breaker
    assert not errors.UpstreamRejected("x").counts_against_breaker
    assert not errors.CircuitOpen("x").counts_against_breaker
    assert not errors.PoolExhausted("x").counts_against_breaker


def test_errors_carry_the_protocols_close_and_status() -> None:
    assert errors.SlowClient.closure.reason.value == "NET-0002"
    assert errors.GatewayError.closure.reason.value == "NET-0000"
    assert errors.UpstreamAuthFailed.http_status == 503
    assert errors.TextRejected.closure.reason.value == "DATA-0000"
