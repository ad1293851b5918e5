"""Token buckets per fleet token, the session cap, and what text may contain."""

from __future__ import annotations

import pytest

from tests.dataplane.fakes import ManualClock
from ttsfleet.dataplane import errors
from ttsfleet.dataplane.limits import CharacterLimiter, SessionLimiter, TokenBucket, clean_text


def test_a_bucket_refills_continuously_up_to_its_capacity() -> None:
    bucket = TokenBucket(capacity=60, rate_per_s=1, level=60, updated_at=0)
    assert bucket.take(60, now=0)
    assert not bucket.take(1, now=0.5)
    assert bucket.take(10, now=10.5)
    assert not bucket.take(61, now=1000)  # capacity caps the refill
    assert bucket.take(60, now=1000)


def test_characters_per_minute_are_limited_per_token() -> None:
    clock = ManualClock()
    limiter = CharacterLimiter(clock, chars_per_minute=600)
    limiter.charge("token-a", 600)
    with pytest.raises(errors.CharacterBudgetExceeded):
        limiter.charge("token-a", 1)
    limiter.charge("token-b", 600)  # another token has its own bucket
    clock.advance(6)  # a tenth of a minute refills a tenth of the budget
    limiter.charge("token-a", 60)
    with pytest.raises(errors.CharacterBudgetExceeded):
        limiter.charge("token-a", 1)


def test_without_auth_there_is_no_token_to_limit() -> None:
    limiter = CharacterLimiter(ManualClock(), chars_per_minute=1)
    limiter.charge(None, 10_000)


def test_the_budget_refusal_carries_the_protocols_close() -> None:
    error = errors.CharacterBudgetExceeded("x")
    assert (int(error.closure.code), error.closure.reason.value, error.http_status) == (
        1008,
        "DATA-0001",
        429,
    )


def test_sessions_are_capped_and_counted() -> None:
    sessions = SessionLimiter(max_sessions=2)
    assert sessions.try_open() and sessions.try_open()
    assert not sessions.try_open()
    sessions.close()
    assert sessions.try_open()
    assert (sessions.active, sessions.total) == (2, 3)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        pytest.param("Hello\x00world", "Hello world", id="nul"),
        pytest.param("line\nbreak\ttab\r", "line\nbreak\ttab\r", id="whitespace-kept"),
        pytest.param("bell\x07 and \x9b csi", "bell  and   csi", id="c0-c1"),
        pytest.param("emoji 🙂 and ünïcode", "emoji 🙂 and ünïcode", id="unicode-kept"),
    ],
)
def test_control_characters_become_spaces(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_lone_surrogates_are_refused_as_invalid_text() -> None:
    with pytest.raises(errors.TextRejected):
        clean_text("broken \ud800 text")


def test_a_new_part_of_the_fleet_rate_keeps_the_fraction_each_token_had_left() -> None:
    clock = ManualClock()
    limiter = CharacterLimiter(clock, chars_per_minute=100)
    limiter.charge("token-a", 50)  # half of its minute spent here
    limiter.set_rate(1000)
    limiter.charge("token-a", 500)  # half of the new minute
    with pytest.raises(errors.CharacterBudgetExceeded):
        limiter.charge("token-a", 10)
    limiter.set_rate(100)
    with pytest.raises(errors.CharacterBudgetExceeded):
        limiter.charge("token-a", 1)  # nothing left, whichever way the part moved
    limiter.charge("token-b", 100)  # a token first seen gets the whole new part
    assert limiter.chars_per_minute == 100
