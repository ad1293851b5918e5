"""The Deployment controller's arithmetic (pure): surge and unavailability bounds, scale, status."""

from __future__ import annotations

import datetime

import pytest

from ttsfleet.devcluster import rollout


def pods(template: str, *states: str) -> list[rollout.PodView]:
    """One pod per state: 'a' available, 'r' ready (not yet available), 'n' not ready."""
    return [
        rollout.PodView(f"{template}-{i}", template, ready=s in "ar", available=s == "a", created=float(i))
        for i, s in enumerate(states)
    ]


ZERO_DOWN = rollout.Strategy(
    recreate=False, max_surge=1, max_unavailable=0, min_ready_s=0, progress_deadline_s=600
)


@pytest.mark.parametrize(
    ("value", "replicas", "round_up", "expected"),
    [
        pytest.param("25%", 2, True, 1, id="surge-rounds-up"),
        pytest.param("25%", 2, False, 0, id="unavailable-rounds-down"),
        pytest.param(3, 2, True, 3, id="absolute"),
        pytest.param("2", 5, False, 2, id="absolute-as-text"),
    ],
)
def test_bounds_resolve_like_kubernetes(
    value: int | str, replicas: int, round_up: bool, expected: int
) -> None:
    assert rollout.resolve(value, replicas, round_up=round_up, default="25%") == expected


def test_both_bounds_zero_allow_one_unavailable() -> None:
    deployment = {
        "spec": {"replicas": 2, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}
    }
    assert rollout.strategy_of(deployment).max_unavailable == 1


def test_a_rollout_surges_one_new_pod_before_stopping_any_old_one() -> None:
    assert rollout.plan(2, ZERO_DOWN, "new", pods("old", "a", "a")) == rollout.Plan(1, ())


def test_an_old_pod_stops_only_once_a_new_one_is_available() -> None:
    waiting = [*pods("old", "a", "a"), *pods("new", "r")]
    assert rollout.plan(2, ZERO_DOWN, "new", waiting) == rollout.Plan(0, ())
    done = [*pods("old", "a", "a"), *pods("new", "a")]
    step = rollout.plan(2, ZERO_DOWN, "new", done)
    assert len(step.stop) == 1 and step.stop[0].startswith("old") and step.start == 1


def test_old_pods_that_are_not_ready_go_at_once() -> None:
    assert rollout.plan(2, ZERO_DOWN, "new", pods("old", "n", "a")).stop == ("old-0",)


def test_scale_down_prefers_pods_not_ready_then_the_newest() -> None:
    step = rollout.plan(1, ZERO_DOWN, "cur", pods("cur", "a", "n", "a"))
    assert step == rollout.Plan(0, ("cur-1", "cur-2"))


def test_scale_up_starts_the_missing_pods_at_once() -> None:
    assert rollout.plan(3, ZERO_DOWN, "cur", pods("cur", "a")) == rollout.Plan(2, ())


def test_recreate_stops_old_pods_first_and_waits_for_them() -> None:
    recreate = rollout.Strategy(True, 0, 0, 0, 600)
    assert rollout.plan(2, recreate, "new", pods("old", "a", "a")) == rollout.Plan(0, ("old-0", "old-1"))
    assert rollout.plan(2, recreate, "new", [], terminating=2) == rollout.Plan(0, ())
    assert rollout.plan(2, recreate, "new", []) == rollout.Plan(2, ())


def test_status_reports_figures_generation_and_conditions() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    deployment = {"metadata": {"name": "gw", "generation": 3}, "spec": {"replicas": 2}}
    figures = rollout.counts("new", [*pods("new", "a", "a")])
    status = rollout.deployment_status(deployment, figures, ZERO_DOWN, None, now)
    assert status["observedGeneration"] == 3
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (2, 2, 2)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


def test_a_rollout_past_its_deadline_reports_progress_deadline_exceeded() -> None:
    started = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    deployment = {"metadata": {"name": "gw"}, "spec": {"replicas": 2}}
    figures = rollout.counts("new", [*pods("old", "a", "a"), *pods("new", "n")])
    late = started + datetime.timedelta(seconds=601)
    status = rollout.deployment_status(deployment, figures, ZERO_DOWN, started, late)
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
