"""Dividing the fleet's budgets among pods: shares never sum over the budget while pods catch up."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from ttsfleet.operator import fleet, sharing


def report(pod: str, revision: int | None, open_sockets: int = 0) -> fleet.PodReport:
    return fleet.PodReport.model_validate(
        {"pod": pod, "share": {"revision": revision}, "upstream": {"open_sockets": open_sockets}}
    )


def divide(
    previous: sharing.Division | None,
    members: list[str],
    reports: list[fleet.PodReport],
    present: list[str] | None = None,
    budget: int | None = 12,
) -> sharing.Division:
    return sharing.next_division(
        previous,
        socket_budget=budget,
        chars_per_minute_per_token=6000,
        members=members,
        present=members if present is None else present,
        reports=reports,
    )


def test_an_even_split_gives_the_first_pods_the_remainder() -> None:
    assert sharing.divide_evenly(11, ["a", "b", "c"]) == {"a": 4, "b": 4, "c": 3}
    assert sharing.divide_evenly(5, []) == {}


def test_a_new_pod_gets_its_share_only_after_the_others_gave_theirs_back() -> None:
    first = divide(None, ["a", "b"], [report("a", None), report("b", None)])
    assert first.sockets == {"a": 6, "b": 6} and first.revision == 1
    busy = [report("a", 1, 6), report("b", 1, 6)]
    scaled = divide(first, ["a", "b", "c"], busy)
    assert scaled.sockets == {"a": 4, "b": 4, "c": 0}  # a and b may still hold 6 each
    assert scaled.held == {"a": 6, "b": 6, "c": 0} and scaled.revision == 2
    only_a = divide(scaled, ["a", "b", "c"], [report("a", 2, 4), report("b", 1, 6), report("c", 2)])
    assert only_a.sockets == {"a": 4, "b": 4, "c": 2}
    both = divide(only_a, ["a", "b", "c"], [report("a", 3, 4), report("b", 3, 4), report("c", 3, 2)])
    assert both.sockets == {"a": 4, "b": 4, "c": 4}


def test_a_pod_on_its_way_out_keeps_its_sockets_counted_until_it_is_gone() -> None:
    three = sharing.Division(5, {"a": 4, "b": 4, "c": 4}, held={"a": 4, "b": 4, "c": 4})
    acked = [report(pod, 5, 4) for pod in "abc"]
    leaving = divide(three, ["a", "b"], acked, present=["a", "b", "c"])
    assert leaving.sockets == {"a": 4, "b": 4}
    gone = divide(leaving, ["a", "b"], acked[:2])
    assert gone.sockets == {"a": 6, "b": 6}


def test_a_pod_that_did_not_answer_is_taken_to_hold_the_most_it_was_given() -> None:
    lowered = sharing.Division(7, {"a": 2, "b": 2}, held={"a": 10, "b": 2})
    again = divide(lowered, ["a", "b"], [report("b", 7, 2)], budget=12)
    assert again.held == {"a": 10, "b": 2}
    assert again.sockets == {"a": 6, "b": 2}  # a may have 10 open still: only a gets more, within them


def test_the_division_survives_a_round_trip_through_the_file() -> None:
    division = divide(None, ["a", "b", "c"], [])
    assert sharing.parse_division(division.to_json()) == division
    assert sharing.parse_division("not json") is None and sharing.parse_division(None) is None


def test_without_a_socket_budget_only_the_character_rate_is_divided() -> None:
    division = divide(None, ["a", "b", "c"], [], budget=None)
    assert division.sockets == {} and division.chars_per_minute_per_token == {"a": 2000, "b": 2000, "c": 2000}
    assert division.unlisted_chars_per_minute_per_token == 1500


def test_the_revision_moves_only_when_shares_do() -> None:
    division = divide(None, ["a", "b"], [])
    assert divide(division, ["a", "b"], [report("a", 1), report("b", 1)]).revision == division.revision


@dataclass
class SimulatedPod:
    revision: int | None = None
    limit: int = 0
    open: int = 0


@pytest.mark.parametrize("seed", range(40))
def test_pods_reading_the_division_at_any_moment_never_hold_more_than_the_budget(seed: int) -> None:
    rng = random.Random(seed)
    budget = rng.randint(3, 20)
    pods: dict[str, SimulatedPod] = {}
    leaving: set[str] = set()
    written: sharing.Division | None = None
    names = iter(f"pod-{n:03d}" for n in range(1000))
    for _ in range(60):
        event = rng.random()
        if event < 0.15 or not pods:
            pods[next(names)] = SimulatedPod()  # a scale-up or a surge pod
        elif event < 0.25:
            leaving.add(rng.choice(sorted(pods)))  # a scale-down: terminating, still holding sockets
        elif event < 0.35 and leaving:
            del pods[leaving.pop()]  # a terminated pod's sockets are closed
        members = sorted(set(pods) - leaving)
        probed = [pod for pod in pods if rng.random() < 0.7 and pod not in leaving]
        reports = [report(pod, pods[pod].revision, pods[pod].open) for pod in probed]
        written = sharing.next_division(
            written,
            socket_budget=budget,
            chars_per_minute_per_token=600,
            members=members,
            present=sorted(pods),
            reports=reports,
        )
        for name, pod in pods.items():
            if rng.random() < 0.5:  # reads the file when the kubelet gets round to it
                pod.revision = written.revision
                pod.limit = written.sockets.get(name, 0)
            pod.open = min(pod.open, pod.limit) if rng.random() < 0.5 else pod.open  # utterances end
            if pod.open < pod.limit:
                pod.open = rng.randint(pod.open, pod.limit)  # sessions speak
            assert sum(p.open for p in pods.values()) <= budget
        assert sum(written.held.values()) <= budget


def test_a_division_is_described_in_a_line_for_its_event() -> None:
    division = sharing.Division(4, {"a": 2, "b": 0}, socket_budget=4, held={"a": 3, "b": 0})
    assert sharing.describe(division) == (
        "upstream socket budget 4 divided (revision 4): a 2, b 0; 1 sockets still held above the new shares"
    )
    rates = sharing.Division(2, chars_per_minute_per_token={"a": 300})
    assert sharing.describe(rates) == "per-token characters per minute divided (revision 2): a 300"
