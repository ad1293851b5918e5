"""The whole desired set: which children exist, and what every one of them carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from ttsfleet.operator import api, applying, rendering
from ttsfleet.operator.rendering import OwnerRef, meta

BackendOf = Callable[..., api.TTSBackend]
EVERYTHING: dict[str, Any] = {
    "autoscaling": {"minReplicas": 2},
    "networkPolicy": {"enabled": True},
    "monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
}


def kinds(children: list[dict[str, Any]]) -> list[str]:
    return [child["kind"] for child in children]


def test_minimal_backend_gets_config_service_and_deployment(backend_of: BackendOf, owner: OwnerRef) -> None:
    assert kinds(rendering.render_children(backend_of(), owner, None)) == [
        "ConfigMap",
        "Service",
        "Deployment",
    ]


def test_optional_children_follow_the_spec_in_managed_order(backend_of: BackendOf, owner: OwnerRef) -> None:
    children = rendering.render_children(backend_of(**EVERYTHING), owner, None)
    assert [(child["apiVersion"], child["kind"]) for child in children] == list(rendering.MANAGED_KINDS)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="minimal"),
        pytest.param(EVERYTHING, id="everything"),
        pytest.param({"replicas": 3, "rotation": {"strategy": "restart"}}, id="fixed-restart"),
        pytest.param(
            {
                "auth": {"enabled": False, "clientTokensSecretRef": None},
                "scheduling": {
                    "nodeSelector": {"pool": "voice"},
                    "tolerations": [{"key": "voice", "operator": "Exists", "effect": "NoSchedule"}],
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 50,
                                    "podAffinityTerm": {
                                        "topologyKey": "kubernetes.io/hostname",
                                        "labelSelector": {"matchLabels": {"app": "x"}},
                                    },
                                }
                            ]
                        }
                    },
                    "priorityClassName": "voice-critical",
                },
            },
            id="no-auth-scheduled",
        ),
    ],
)
def test_every_child_passes_kubernetes_validate_strict(
    backend_of: BackendOf, owner: OwnerRef, overrides: dict[str, Any]
) -> None:
    for child in rendering.render_children(backend_of(**overrides), owner, "0123456789ab"):
        if child["kind"] == "ServiceMonitor":
            continue  # not a built-in kind: no schema ships with kubernetes-validate
        kubernetes_validate.validate(child, "1.33", strict=True)


def test_every_child_is_labelled_owned_and_namespaced(backend_of: BackendOf, owner: OwnerRef) -> None:
    for child in rendering.render_children(backend_of(**EVERYTHING), owner, None):
        metadata = child["metadata"]
        assert metadata["namespace"] == "voice"
        assert {
            "app.kubernetes.io/name": "ttsfleet",
            "app.kubernetes.io/instance": "aura-en",
            "app.kubernetes.io/version": "0.1.0",
            "app.kubernetes.io/component": "gateway",
            "app.kubernetes.io/part-of": "ttsfleet",
            "app.kubernetes.io/managed-by": "ttsfleet-operator",
        }.items() <= metadata["labels"].items()
        assert metadata["ownerReferences"] == [
            {
                "apiVersion": "ttsfleet.io/v1alpha1",
                "kind": "TTSBackend",
                "name": "aura-en",
                "uid": "uid-1234",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_selectors_never_use_labels_that_change(backend_of: BackendOf, owner: OwnerRef) -> None:
    children = {
        child["kind"]: child for child in rendering.render_children(backend_of(**EVERYTHING), owner, None)
    }
    stable = {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"}
    selectors = [
        children["Deployment"]["spec"]["selector"]["matchLabels"],
        children["Service"]["spec"]["selector"],
        children["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        children["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
        children["ServiceMonitor"]["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert set(selector) == stable


def test_image_change_relabels_but_keeps_selectors(backend_of: BackendOf, owner: OwnerRef) -> None:
    old = rendering.render_children(backend_of(), owner, None)[2]
    new = rendering.render_children(backend_of(image="ghcr.io/ttsfleet/ttsfleet:0.2.0"), owner, None)[2]
    assert new["metadata"]["labels"]["app.kubernetes.io/version"] == "0.2.0"
    assert new["spec"]["selector"] == old["spec"]["selector"]


def test_service_monitor_keeps_its_extra_labels(backend_of: BackendOf, owner: OwnerRef) -> None:
    monitor = rendering.render_children(backend_of(**EVERYTHING), owner, None)[-1]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]


@pytest.mark.parametrize(
    ("image", "version"),
    [
        pytest.param("ghcr.io/ttsfleet/ttsfleet:0.1.0", "0.1.0", id="tag"),
        pytest.param("registry:5000/ttsfleet", "latest", id="registry-port-no-tag"),
        pytest.param("ttsfleet@sha256:0123456789abcdef0123", "0123456789ab", id="digest"),
        pytest.param("ttsfleet:1.2@sha256:0123456789abcdef", "1.2", id="tag-and-digest"),
        pytest.param("ttsfleet:" + "v" * 80, "v" * 63, id="long-tag"),
        pytest.param("ttsfleet:-_-", "unknown", id="unusable-tag"),
    ],
)
def test_version_label_comes_from_the_image(image: str, version: str) -> None:
    assert meta.image_version(image) == version


def test_owner_reference_of_a_backend_read_from_the_api(backend_of: BackendOf) -> None:
    assert OwnerRef.of(backend_of()) == OwnerRef(name="aura-en", uid="uid-1234")


def test_selector_string_is_what_scale_reports(backend_of: BackendOf) -> None:
    assert rendering.selector_string(backend_of()) == (
        "app.kubernetes.io/component=gateway,app.kubernetes.io/instance=aura-en,app.kubernetes.io/name=ttsfleet"
    )


def test_endpoint_is_the_service_url_agents_use(backend_of: BackendOf) -> None:
    backend = backend_of(service={"port": 9000})
    assert rendering.service_endpoint(backend) == "ws://aura-en.voice.svc.cluster.local:9000/v1/speak"
    assert rendering.service_endpoint(backend, "corp.internal").startswith(
        "ws://aura-en.voice.svc.corp.internal:"
    )


def test_service_carries_type_port_and_annotations(backend_of: BackendOf, owner: OwnerRef) -> None:
    service = rendering.render_service(
        backend_of(service={"type": "LoadBalancer", "port": 443, "annotations": {"lb": "internal"}}), owner
    )
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 443, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["metadata"]["annotations"] == {"lb": "internal"}
    assert "annotations" not in rendering.render_service(backend_of(), owner)["metadata"]


def test_pruning_looks_for_each_child_under_its_rendered_name(backend_of: BackendOf, owner: OwnerRef) -> None:
    backend = backend_of(**EVERYTHING)
    names = applying.child_names(backend.metadata.namespace or "", backend.metadata.name)
    for child in rendering.render_children(backend, owner, None):
        assert names[(child["apiVersion"], child["kind"])] == child["metadata"]["name"], child["kind"]
