"""How many gateway pods run, and how many may go at once: the HPA and the PodDisruptionBudget.

Scale-down is slow on purpose: a removed pod drains its streams, so shedding one pod a minute after a
five-minute stabilization keeps agents from reconnecting in waves.
"""

from __future__ import annotations

from typing import Any

from ttsfleet.operator import api
from ttsfleet.operator.rendering import meta

SESSIONS_METRIC = "ttsfleet_sessions_active"
DEFAULT_SCALE_UP: dict[str, Any] = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 4, "periodSeconds": 15},
    ],
}
DEFAULT_SCALE_DOWN: dict[str, Any] = {
    "stabilizationWindowSeconds": 300,
    "selectPolicy": "Min",
    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
}


def render_hpa(backend: api.TTSBackend, owner: meta.OwnerRef) -> dict[str, Any] | None:
    """The autoscaling/v2 HPA on the Deployment, or None when the spec fixes the replica count."""
    autoscaling = backend.spec.autoscaling
    if autoscaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta.metadata(backend, owner),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": backend.metadata.name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": _metrics(autoscaling),
            "behavior": {
                "scaleUp": _rules(autoscaling.behavior.scale_up, DEFAULT_SCALE_UP),
                "scaleDown": _rules(autoscaling.behavior.scale_down, DEFAULT_SCALE_DOWN),
            },
        },
    }


def _metrics(autoscaling: api.AutoscalingSpec) -> list[dict[str, Any]]:
    metrics: list[dict[str, Any]] = []
    if autoscaling.target_active_streams_per_pod is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": SESSIONS_METRIC},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": str(autoscaling.target_active_streams_per_pod),
                    },
                },
            }
        )
    cpu_percent = autoscaling.cpu_target_percent
    if cpu_percent is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": cpu_percent},
                },
            }
        )
    return metrics


def _rules(override: api.ScalingRules | None, default: dict[str, Any]) -> dict[str, Any]:
    # An override replaces only the parts it sets; the rest keeps the operator's default.
    if override is None:
        return dict(default)
    rules = dict(default)
    if override.stabilization_window_seconds is not None:
        rules["stabilizationWindowSeconds"] = override.stabilization_window_seconds
    if override.select_policy is not None:
        rules["selectPolicy"] = override.select_policy.value
    if override.policies:
        rules["policies"] = [
            {"type": policy.type.value, "value": policy.value, "periodSeconds": policy.period_seconds}
            for policy in override.policies
        ]
    return rules


def render_pdb(backend: api.TTSBackend, owner: meta.OwnerRef) -> dict[str, Any] | None:
    """A policy/v1 PDB allowing one voluntary eviction at a time; None for one pod (it would block drains)."""
    if backend.spec.min_pods <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta.metadata(backend, owner),
        "spec": {
            "maxUnavailable": 1,
            # Pods that never became ready protect nothing; letting them go unblocks node drains.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": meta.selector_labels(backend)},
        },
    }
