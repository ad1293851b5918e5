"""The HPA mirrored into a TTSBackend's status: replicas, its conditions, and ScalingActive with what to
install when a metric cannot be read (HPA bodies shaped as the HPA controller writes them)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from ttsfleet.operator import api, conditions, events, status
from ttsfleet.operator.facts import FleetFacts, HpaFacts, SecretFacts, SecretState
from ttsfleet.operator.rendering.scaling import SESSIONS_METRIC

NOW = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)
KEY = SecretFacts("deepgram", "api-key", SecretState.PRESENT, "0123456789ab")
STREAMS = {"type": "Pods", "pods": {"metric": {"name": SESSIONS_METRIC}, "target": {"type": "AverageValue"}}}
CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}
NO_ADAPTER = (
    "the HPA was unable to compute the replica count: unable to get metric ttsfleet_sessions_active: unable"
    " to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered"
)
NO_METRICS_SERVER = (
    "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics"
    " for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the"
    " requested resource (get pods.metrics.k8s.io)"
)


def condition(kind: str, state: str, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": state,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-12-02T07:59:00Z",
    }


def hpa(
    metrics: list[dict[str, Any]], *states: dict[str, Any], current: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "spec": {"minReplicas": 2, "maxReplicas": 10, "metrics": metrics},
        "status": {
            "desiredReplicas": 3,
            "currentReplicas": 2,
            "lastScaleTime": "2026-12-02T07:58:00Z",
            "conditions": list(states),
            **({"currentMetrics": current} if current is not None else {}),
        },
    }


ABLE = condition("AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target")
UNLIMITED = condition("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within range")
ACTIVE = condition("ScalingActive", "True", "ValidMetricFound", "the HPA was able to compute the count")
CPU_READ = {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}
STREAMS_READ = {
    "type": "Pods",
    "pods": {"metric": {"name": SESSIONS_METRIC}, "current": {"averageValue": "3"}},
}


def scaling_active(body: dict[str, Any] | None) -> conditions.Observation:
    return conditions.observe_scaling_active(None if body is None else HpaFacts.from_hpa(body))


def test_hpa_facts_read_replicas_conditions_and_metric_names() -> None:
    facts = HpaFacts.from_hpa(hpa([STREAMS, CPU], ABLE, ACTIVE, current=[{"type": ""}, CPU_READ]))
    assert (facts.desired_replicas, facts.current_replicas) == (3, 2)
    assert facts.wanted_metrics == (SESSIONS_METRIC, "cpu")
    assert facts.reported_metrics == ("cpu",)  # the unread metric is an entry without a type
    assert facts.condition("ScalingActive") == conditions_of(ACTIVE)
    assert facts.condition("ScalingLimited") is None


def conditions_of(raw: dict[str, Any]) -> Any:
    return HpaFacts.from_hpa({"status": {"conditions": [raw]}}).conditions[0]


def test_an_hpa_without_status_reports_nothing_yet() -> None:
    facts = HpaFacts.from_hpa({"spec": {"metrics": [CPU]}})
    assert facts == HpaFacts(wanted_metrics=("cpu",))


@pytest.mark.parametrize(
    ("body", "expected_status", "expected_reason"),
    [
        pytest.param(None, "Unknown", "AutoscalerNotFound", id="no-hpa-yet"),
        pytest.param(hpa([CPU], ABLE), "Unknown", "AutoscalerNotEvaluated", id="not-evaluated"),
        pytest.param(hpa([CPU], ABLE, ACTIVE, current=[CPU_READ]), "True", "ValidMetricFound", id="cpu-read"),
        pytest.param(
            hpa([STREAMS, CPU], ABLE, ACTIVE, current=[STREAMS_READ, CPU_READ]),
            "True",
            "ValidMetricFound",
            id="both-read",
        ),
        pytest.param(
            hpa([CPU], ABLE, condition("ScalingActive", "False", "ScalingDisabled", "scaling is disabled")),
            "False",
            "ScalingDisabled",
            id="other-reasons-mirrored",
        ),
    ],
)
def test_scaling_active_follows_the_hpa(
    body: dict[str, Any] | None, expected_status: str, expected_reason: str
) -> None:
    observed = scaling_active(body)
    assert (observed.status.value, observed.reason) == (expected_status, expected_reason)


def test_a_missing_streams_metric_says_to_install_an_adapter() -> None:
    failed = condition("ScalingActive", "False", "FailedGetPodsMetric", NO_ADAPTER)
    observed = scaling_active(hpa([STREAMS], ABLE, failed))
    assert observed.status is api.ConditionStatus.FALSE
    assert observed.reason == "StreamsMetricUnavailable"
    assert "custom.metrics.k8s.io" in observed.message
    assert "prometheus-adapter" in observed.message
    assert NO_ADAPTER in observed.message  # the HPA controller's own words stay visible


def test_a_streams_metric_unread_beside_cpu_is_said_while_the_hpa_stays_active_on_cpu() -> None:
    observed = scaling_active(hpa([STREAMS, CPU], ABLE, ACTIVE, current=[{"type": ""}, CPU_READ]))
    assert (observed.status, observed.reason) == (api.ConditionStatus.TRUE, "ValidMetricFound")
    assert "scales on CPU alone" in observed.message
    assert "custom.metrics.k8s.io" in observed.message


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(
            "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get"
            " metrics for resource cpu: no metrics returned from resource metrics API",
            id="resource-no-samples",
        ),
        pytest.param(
            "the HPA was unable to compute the replica count: failed to get cpu utilization: did not"
            " receive metrics for targeted pods (pods might be unready)",
            id="pods-unready",
        ),
        pytest.param(
            "the HPA was unable to compute the replica count: unable to get metric ttsfleet_sessions_active:"
            " no metrics returned from custom metrics API",
            id="custom-no-samples",
        ),
    ],
)
def test_no_samples_yet_is_a_wait_not_a_warning(message: str) -> None:
    """What every new pod looks like for its first scrapes: Unknown, and no Event."""
    reason = "FailedGetPodsMetric" if "custom" in message else "FailedGetResourceMetric"
    observed = scaling_active(hpa([STREAMS, CPU], ABLE, condition("ScalingActive", "False", reason, message)))
    assert (observed.status, observed.reason) == (api.ConditionStatus.UNKNOWN, "AwaitingMetrics")
    assert observed.reason not in set(events.Reason)


def test_a_missing_cpu_request_says_to_set_it() -> None:
    message = (
        "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request"
        " for cpu in container gateway of Pod aura-1"
    )
    failed = condition("ScalingActive", "False", "FailedGetResourceMetric", message)
    observed = scaling_active(hpa([CPU], ABLE, failed))
    assert (observed.status, observed.reason) == (api.ConditionStatus.FALSE, "CPURequestMissing")
    assert "spec.resources.requests.cpu" in observed.message


def test_missing_resource_metrics_say_to_install_metrics_server() -> None:
    failed = condition("ScalingActive", "False", "FailedGetResourceMetric", NO_METRICS_SERVER)
    observed = scaling_active(hpa([CPU], ABLE, failed))
    assert (observed.status, observed.reason) == (api.ConditionStatus.FALSE, "ResourceMetricsUnavailable")
    assert "install metrics-server" in observed.message


def facts(body: dict[str, Any] | None, *, autoscaled: bool = True) -> FleetFacts:
    return FleetFacts(
        generation=1,
        config_hash="cfg",
        deepgram_key=KEY,
        autoscaled=autoscaled,
        hpa=None if body is None else HpaFacts.from_hpa(body),
    )


def test_a_fixed_replica_backend_has_no_scaling_condition_and_no_autoscaling_status() -> None:
    computed = status.compute_status(facts(None, autoscaled=False), (), NOW, selector="s", endpoint="e")
    assert "autoscaling" not in computed
    assert "ScalingActive" not in [entry["type"] for entry in computed["conditions"]]


def test_the_status_mirrors_replicas_and_the_three_hpa_conditions() -> None:
    extra = condition("SomethingElse", "True", "Other")
    body = hpa([CPU], ABLE, ACTIVE, UNLIMITED, extra, current=[CPU_READ])
    computed = status.compute_status(facts(body), (), NOW, selector="s", endpoint="e")
    assert computed["autoscaling"] == {
        "desiredReplicas": 3,
        "currentReplicas": 2,
        "lastScaleTime": "2026-12-02T07:58:00Z",
        "conditions": [ABLE, ACTIVE, UNLIMITED],
    }
    scaling = next(entry for entry in computed["conditions"] if entry["type"] == "ScalingActive")
    assert (scaling["status"], scaling["reason"]) == ("True", "ValidMetricFound")


def test_an_autoscaled_backend_before_its_hpa_exists_has_an_empty_mirror() -> None:
    computed = status.compute_status(facts(None), (), NOW, selector="s", endpoint="e")
    assert computed["autoscaling"] == {"conditions": []}


def test_a_missing_streams_metric_posts_one_warning_event_when_it_appears() -> None:
    working = facts(hpa([STREAMS], ABLE, ACTIVE, current=[STREAMS_READ]))
    failed = condition("ScalingActive", "False", "FailedGetPodsMetric", NO_ADAPTER)
    broken = dataclasses.replace(working, hpa=HpaFacts.from_hpa(hpa([STREAMS], ABLE, failed)))
    before = api.TTSBackendStatus.model_validate(
        status.compute_status(working, (), NOW, selector="s", endpoint="e")
    )
    after = api.TTSBackendStatus.model_validate(
        status.compute_status(broken, before.conditions, NOW, selector="s", endpoint="e")
    )
    notices = events.transitions(before, after)
    assert [(n.type, n.reason) for n in notices] == [
        (events.EventType.WARNING, events.Reason.STREAMS_METRIC_UNAVAILABLE)
    ]
    assert "custom.metrics.k8s.io" in notices[0].message
    assert events.transitions(after, after) == []  # news once, not on every probe tick
