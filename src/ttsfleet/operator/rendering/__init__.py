"""Pure rendering of a TTSBackend's children: spec in, Kubernetes manifests (plain dicts) out.

No I/O, no clock, no Kubernetes client: handlers pass in the backend, its owner reference and the
observed key fingerprint, and apply what comes back.
"""

from __future__ import annotations

from typing import Any

from ttsfleet.operator import api
from ttsfleet.operator.rendering import config, deployment, exposure, meta, scaling
from ttsfleet.operator.rendering.config import config_hash, render_config_map, render_gateway_config
from ttsfleet.operator.rendering.deployment import render_deployment
from ttsfleet.operator.rendering.exposure import (
    ClusterNetwork,
    render_network_policy,
    render_service,
    render_service_monitor,
    service_endpoint,
)
from ttsfleet.operator.rendering.meta import OwnerRef, labels, selector_labels, selector_string
from ttsfleet.operator.rendering.scaling import render_hpa, render_pdb

# Every (apiVersion, kind) the operator may create for a backend, in apply order; a handler deletes
# owned objects of these kinds that render_children no longer returns.
MANAGED_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
)


def render_children(
    backend: api.TTSBackend,
    owner: OwnerRef,
    secret_hash: str | None,
    network: ClusterNetwork = exposure.NO_CLUSTER_FACTS,
) -> list[dict[str, Any]]:
    """The whole desired set of children, in MANAGED_KINDS order (optional ones only when wanted)."""
    rendered = [
        config.render_config_map(backend, owner),
        exposure.render_service(backend, owner),
        deployment.render_deployment(backend, owner, config.config_hash(backend.spec), secret_hash),
        scaling.render_hpa(backend, owner),
        scaling.render_pdb(backend, owner),
        exposure.render_network_policy(backend, owner, network),
        exposure.render_service_monitor(backend, owner),
    ]
    return [child for child in rendered if child is not None]


__all__ = [
    "MANAGED_KINDS",
    "ClusterNetwork",
    "OwnerRef",
    "config_hash",
    "labels",
    "meta",
    "render_children",
    "render_config_map",
    "render_deployment",
    "render_gateway_config",
    "render_hpa",
    "render_network_policy",
    "render_pdb",
    "render_service",
    "render_service_monitor",
    "selector_labels",
    "selector_string",
    "service_endpoint",
]
