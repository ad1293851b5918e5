"""The benchmark's Flush floor: the busiest budget minute, counting the earlier levels still inside it."""

from __future__ import annotations

from benchmarks.scenarios import busiest_window


def test_a_short_level_alone_counts_all_its_flushes() -> None:
    assert busiest_window((), [float(n) for n in range(30)], 60.0) == 30


def test_flushes_of_an_earlier_level_within_the_minute_still_count() -> None:
    earlier = [float(n) for n in range(30)]  # a 30 s level, then the next one starts at once
    own = [30.0 + n for n in range(30)]
    assert busiest_window(earlier, own, 60.0) == 60
    later = [100.0 + n for n in range(30)]  # after a pause longer than the window they do not
    assert busiest_window(earlier, later, 60.0) == 30


def test_a_long_level_counts_its_busiest_minute_not_its_average() -> None:
    quiet, busy = [float(n) for n in range(0, 60, 6)], [60.0 + n / 2 for n in range(120)]
    assert busiest_window((), quiet + busy, 60.0) == 120
    assert busiest_window((), [], 60.0) == 0
