"""The benchmark's account of slow first bytes: how many, and whether they belong to the level's ramp."""

from __future__ import annotations

from benchmarks.scenarios import RAMP_S, SLOW_TTFB_MARGIN_MS, slow_utterances


def test_slow_first_bytes_are_counted_by_the_second_their_utterance_began() -> None:
    ttfb = [90.0] * 20 + [90.0 + SLOW_TTFB_MARGIN_MS + 1] * 3
    started = [float(n) for n in range(20)] + [0.5, 1.2, RAMP_S + 2.5]
    expected = {"count": 3, "in_ramp": 2, "per_second": {"0": 1, "1": 1, "7": 1}}
    assert slow_utterances(ttfb, started) == expected


def test_a_first_byte_within_a_handshake_of_the_median_is_not_slow() -> None:
    ttfb = [90.0, 91.0, 90.0 + SLOW_TTFB_MARGIN_MS]
    assert slow_utterances(ttfb, [0.0, 1.0, 2.0])["count"] == 0
    assert slow_utterances([], []) == {"count": 0, "in_ramp": 0, "per_second": {}}
