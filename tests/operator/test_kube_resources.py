"""The API resources of the kinds the operator renders, derived from `rendering.MANAGED_KINDS`."""

from __future__ import annotations

from ttsfleet.operator import kube, rendering

# As the API server serves them (`kubectl api-resources`), written out here to check the derivation.
SERVED = {
    ("v1", "ConfigMap"): "/api/v1/namespaces/voice/configmaps",
    ("v1", "Service"): "/api/v1/namespaces/voice/services",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/voice/deployments",
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
    ): "/apis/autoscaling/v2/namespaces/voice/horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "/apis/policy/v1/namespaces/voice/poddisruptionbudgets",
    ("networking.k8s.io/v1", "NetworkPolicy"): "/apis/networking.k8s.io/v1/namespaces/voice/networkpolicies",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): (
        "/apis/monitoring.coreos.com/v1/namespaces/voice/servicemonitors"
    ),
}


def test_every_managed_kind_has_the_resource_the_api_serves() -> None:
    assert {key: resource.path("voice") for key, resource in kube.BY_KIND.items()} == SERVED
    assert list(kube.BY_KIND) == list(rendering.MANAGED_KINDS)


def test_a_manifest_names_its_resource() -> None:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "aura-en"}}
    assert kube.resource_of(body) is kube.DEPLOYMENTS
