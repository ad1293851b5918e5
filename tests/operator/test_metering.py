"""status.usage from per-pod counters: deltas, process restarts, new pods, windows and an idle fleet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ttsfleet.operator import metering

NOW = datetime(2026, 12, 2, 12, 0, 30, tzinfo=UTC)


def statusz(pod: str, boot: str, characters: int) -> dict[str, Any]:
    return {"pod": pod, "usage": {"boot": boot, "billed_characters": characters}}


def test_a_new_ledger_starts_from_the_counters_it_finds() -> None:
    usage = metering.next_usage(None, [statusz("a", "b1", 5000)], 0.03, NOW)
    assert usage.last_day.characters == 0 and usage.since == NOW
    assert [(c.pod, c.characters) for c in usage.counters] == [("a", 5000)]


def test_growth_of_a_counter_is_counted_and_priced() -> None:
    first = metering.next_usage(None, [statusz("a", "b1", 5000)], 0.03, NOW)
    second = metering.next_usage(first, [statusz("a", "b1", 7000)], 0.03, NOW + timedelta(seconds=10))
    assert second.last_hour.characters == second.last_day.characters == 2000
    assert second.last_hour.estimated_cost_usd == 0.06


def test_a_restarted_process_counts_in_full_and_never_negative() -> None:
    first = metering.next_usage(None, [statusz("a", "b1", 5000)], 0.03, NOW)
    restarted = metering.next_usage(first, [statusz("a", "b2", 300)], 0.03, NOW + timedelta(seconds=10))
    assert restarted.last_hour.characters == 300


def test_a_pod_never_read_before_counts_in_full() -> None:
    first = metering.next_usage(None, [statusz("a", "b1", 10)], 0.03, NOW)
    second = metering.next_usage(
        first, [statusz("a", "b1", 10), statusz("b", "b9", 400)], 0.03, NOW + timedelta(seconds=10)
    )
    assert second.last_hour.characters == 400


def test_characters_leave_the_hour_then_the_day() -> None:
    first = metering.next_usage(None, [statusz("a", "b1", 0)], 0.03, NOW)
    counted = metering.next_usage(first, [statusz("a", "b1", 1000)], 0.03, NOW)
    later = metering.next_usage(counted, [statusz("a", "b1", 1000)], 0.03, NOW + timedelta(minutes=70))
    assert later.last_hour.characters == 0 and later.last_day.characters == 1000
    assert [b.minutes for b in later.buckets] == [60]
    gone = metering.next_usage(later, [], 0.03, NOW + timedelta(hours=25))
    assert gone.last_day.characters == 0 and gone.buckets == []


def test_an_idle_fleet_leaves_the_usage_unchanged() -> None:
    first = metering.next_usage(None, [statusz("a", "b1", 10)], 0.03, NOW)
    again = metering.next_usage(first, [statusz("a", "b1", 10)], 0.03, NOW + timedelta(seconds=10))
    assert again == first


def test_an_older_gateway_without_a_counter_is_left_out() -> None:
    usage = metering.next_usage(None, [{"pod": "a"}, "not a report"], 0.03, NOW)
    assert usage.counters == []
