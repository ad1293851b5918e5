"""The HPA and the PodDisruptionBudget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ttsfleet.operator import api, rendering
from ttsfleet.operator.rendering import OwnerRef

BackendOf = Callable[..., api.TTSBackend]


def hpa_of(backend: api.TTSBackend, owner: OwnerRef) -> dict[str, Any]:
    hpa = rendering.render_hpa(backend, owner)
    assert hpa is not None
    return hpa


def test_no_hpa_for_a_fixed_count(backend_of: BackendOf, owner: OwnerRef) -> None:
    assert rendering.render_hpa(backend_of(replicas=3), owner) is None


def test_hpa_targets_the_deployment_within_bounds(backend_of: BackendOf, owner: OwnerRef) -> None:
    spec = hpa_of(backend_of(autoscaling={"minReplicas": 3, "maxReplicas": 12}), owner)["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "aura-en"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 12)


@pytest.mark.parametrize(
    ("autoscaling", "metrics"),
    [
        pytest.param({}, [("Resource", 70)], id="cpu-by-default"),
        pytest.param({"targetActiveStreamsPerPod": 25}, [("Pods", "25")], id="streams"),
        pytest.param(
            {"targetActiveStreamsPerPod": 25, "targetCPUUtilizationPercentage": 80},
            [("Pods", "25"), ("Resource", 80)],
            id="both",
        ),
    ],
)
def test_metrics_follow_the_targets(
    backend_of: BackendOf, owner: OwnerRef, autoscaling: dict[str, Any], metrics: list[tuple[str, Any]]
) -> None:
    rendered = hpa_of(backend_of(autoscaling=autoscaling), owner)["spec"]["metrics"]
    summary = [
        (
            metric["type"],
            metric["pods"]["target"]["averageValue"]
            if metric["type"] == "Pods"
            else metric["resource"]["target"]["averageUtilization"],
        )
        for metric in rendered
    ]
    assert summary == metrics
    for metric in rendered:
        if metric["type"] == "Pods":
            assert metric["pods"]["metric"] == {"name": "ttsfleet_sessions_active"}


def test_scale_down_is_slow_by_default(backend_of: BackendOf, owner: OwnerRef) -> None:
    behavior = hpa_of(backend_of(autoscaling={}), owner)["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0


def test_behavior_overrides_only_what_it_sets(backend_of: BackendOf, owner: OwnerRef) -> None:
    autoscaling = {
        "behavior": {
            "scaleDown": {"stabilizationWindowSeconds": 60},
            "scaleUp": {
                "selectPolicy": "Min",
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 30}],
            },
        }
    }
    behavior = hpa_of(backend_of(autoscaling=autoscaling), owner)["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]
    assert behavior["scaleUp"]["selectPolicy"] == "Min"
    assert behavior["scaleUp"]["policies"] == [{"type": "Percent", "value": 50, "periodSeconds": 30}]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0


def test_default_behavior_is_not_shared_between_renders(backend_of: BackendOf, owner: OwnerRef) -> None:
    first = hpa_of(backend_of(autoscaling={}), owner)
    first["spec"]["behavior"]["scaleDown"]["selectPolicy"] = "Disabled"
    assert hpa_of(backend_of(autoscaling={}), owner)["spec"]["behavior"]["scaleDown"]["selectPolicy"] == "Min"


@pytest.mark.parametrize(
    ("overrides", "wanted"),
    [
        pytest.param({}, False, id="one-pod"),
        pytest.param({"replicas": 0}, False, id="zero"),
        pytest.param({"replicas": 2}, True, id="two-pods"),
        pytest.param({"autoscaling": {"minReplicas": 1}}, False, id="autoscaled-from-one"),
        pytest.param({"autoscaling": {"minReplicas": 2}}, True, id="autoscaled-from-two"),
    ],
)
def test_pdb_only_when_more_than_one_pod_must_run(
    backend_of: BackendOf, owner: OwnerRef, overrides: dict[str, Any], wanted: bool
) -> None:
    pdb = rendering.render_pdb(backend_of(**overrides), owner)
    assert (pdb is not None) is wanted
    if pdb is not None:
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
