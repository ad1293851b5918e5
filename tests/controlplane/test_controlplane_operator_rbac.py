"""The operator on the real apiserver as its ServiceAccount, with exactly the chart's RBAC.

The chart is rendered with helm, its RBAC applied, and the operator process gets a kubeconfig holding
only a token of the chart's ServiceAccount. With the chart's grants it renders a TTSBackend's children;
with one grant taken away the apiserver refuses and the operator says so in a Warning Event.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane.conftest import NAMESPACE, ROOT
from tests.operator.integration.conftest import backend, secret  # type: ignore[import-not-found]
from tests.support.helm import RELEASE_NAMESPACE, helm, of_kind
from tests.support.waiting import wait_for
from ttsfleet.devcluster.controlplane import chart, provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane

__all__ = ["helm"]  # the fixture, used by name
OPERATOR_DEADLINE_S = 60.0


def chart_rbac(helm: Path, release: str, namespace: str) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC for an operator serving `namespace` only, as `release`."""
    values = [f"operator.watchNamespaces={{{namespace}}}", "operator.peering.enabled=false"]
    return chart.operator_rbac(helm, release, RELEASE_NAMESPACE, values, ROOT / "build")


def without_grant(manifests: list[dict[str, Any]], resource: str) -> list[dict[str, Any]]:
    for role in of_kind(manifests, "Role"):
        role["rules"] = [rule for rule in role["rules"] if resource not in rule["resources"]]
    return manifests


def without_verb(manifests: list[dict[str, Any]], resource: str, verb: str) -> list[dict[str, Any]]:
    for role in of_kind(manifests, "Role"):
        for rule in role["rules"]:
            if resource in rule["resources"]:
                rule["verbs"] = [granted for granted in rule["verbs"] if granted != verb]
    return manifests


@pytest.fixture(scope="module")
def release_namespace(control_plane: ControlPlane) -> str:
    provisioning.create_namespaces(control_plane, (RELEASE_NAMESPACE,))
    return RELEASE_NAMESPACE


@contextlib.contextmanager
def operator_as(
    plane: ControlPlane,
    manifests: list[dict[str, Any]],
    namespace: str,
    workdir: Path,
    extra: tuple[str, ...] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """Apply `manifests`, then run the operator for `namespace` with its ServiceAccount's token only."""
    kubeconfig = chart.install_operator_identity(plane, manifests, workdir / "operator.kubeconfig")
    log = workdir / f"operator-{namespace}.log"
    with log.open("ab") as stream:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "ttsfleet", "operator", "--namespace", namespace),
                *("--metrics-port", "0", *extra),
            ],
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_backend(plane: ControlPlane, namespace: str, name: str, **scaling: Any) -> None:
    """The Deepgram key Secret and a TTSBackend using it (one replica unless `scaling` says otherwise)."""
    with plane.admin_client() as http:
        for path, body in (
            (f"/api/v1/namespaces/{namespace}/secrets", secret("deepgram", "api-key", "dg-key")),
            (
                f"/apis/ttsfleet.io/v1alpha1/namespaces/{namespace}/ttsbackends",
                backend(name, **(scaling or {"replicas": 1})),
            ),
        ):
            response = http.post(path, json=body)
            assert response.status_code == 201, response.text


def get(plane: ControlPlane, path: str) -> dict[str, Any] | None:
    with plane.admin_client() as http:
        response = http.get(path)
    return response.json() if response.status_code == 200 else None


def replica_sets(plane: ControlPlane, namespace: str) -> list[Any]:
    listing = get(plane, f"/apis/apps/v1/namespaces/{namespace}/replicasets") or {"items": []}
    return [item.get("status", {}).get("conditions") for item in listing["items"]]


def test_the_operator_renders_children_with_the_charts_grants_only(
    control_plane: ControlPlane, helm: Path, release_namespace: str, tmp_path: Path
) -> None:
    namespace = "voice-granted"
    provisioning.create_namespaces(control_plane, (namespace,))
    manifests = chart_rbac(helm, "granted", namespace)
    with operator_as(control_plane, manifests, namespace, tmp_path):
        start_backend(control_plane, namespace, "aura")
        deployment = wait_for(
            lambda: get(control_plane, f"/apis/apps/v1/namespaces/{namespace}/deployments/aura"),
            OPERATOR_DEADLINE_S,
            "the operator's Deployment",
        )
        owner = deployment["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["blockOwnerDeletion"]) == ("TTSBackend", "aura", True)
        assert get(control_plane, f"/api/v1/namespaces/{namespace}/services/aura")
        # The real ReplicaSet controller makes the pods, and PodSecurity `restricted` admits them.
        selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())

        def pods() -> list[dict[str, Any]]:
            with control_plane.admin_client() as http:
                found = http.get(f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": selector})
            items: list[dict[str, Any]] = found.json()["items"]
            return items

        wait_for(
            pods,
            OPERATOR_DEADLINE_S,
            lambda: (
                f"pods of the Deployment; ReplicaSet conditions: {replica_sets(control_plane, namespace)}"
            ),
        )


def test_a_missing_grant_fails_visibly(
    control_plane: ControlPlane, helm: Path, release_namespace: str, tmp_path: Path
) -> None:
    """The apiserver, not the test, enforces the chart's RBAC: without the ConfigMap grant nothing is
    rendered, and the backend says so: Degraded with the refused request, and a Warning Event."""
    namespace = "voice-denied"
    provisioning.create_namespaces(control_plane, (namespace,))
    manifests = without_grant(chart_rbac(helm, "denied", namespace), "configmaps")
    with operator_as(control_plane, manifests, namespace, tmp_path):
        start_backend(control_plane, namespace, "aura")

        def refused() -> str | None:
            body = get(control_plane, f"/apis/ttsfleet.io/v1alpha1/namespaces/{namespace}/ttsbackends/aura")
            for condition in ((body or {}).get("status") or {}).get("conditions", []):
                if condition["type"] == "Degraded" and condition["status"] == "True":
                    message = str(condition.get("message", ""))
                    return message if "forbidden" in message else None
            return None

        message = wait_for(refused, OPERATOR_DEADLINE_S, "the backend to report the refused request")
        assert 'resource "configmaps"' in message, message
        # kopf posts Events from a queue, a moment after the status shows the reason.
        wait_for(
            lambda: any(
                "forbidden" in warning for warning in warnings_about(control_plane, namespace, "aura")
            ),
            OPERATOR_DEADLINE_S,
            "the Warning Event",
        )
        assert get(control_plane, f"/apis/apps/v1/namespaces/{namespace}/deployments/aura") is None


def warnings_about(plane: ControlPlane, namespace: str, name: str) -> list[str]:
    events = get(plane, f"/api/v1/namespaces/{namespace}/events") or {"items": []}
    return [
        f"{event['reason']}: {event['message']}"
        for event in events["items"]
        if event["involvedObject"]["name"] == name and event["type"] != "Normal"
    ]


def test_the_examples_apply_strictly_and_render_every_child(
    control_plane: ControlPlane, helm: Path, release_namespace: str, tmp_path: Path
) -> None:
    """examples/ as users apply them (kubectl's strict field validation, no --validate=false)."""
    manifests = chart_rbac(helm, "examples", NAMESPACE)
    with operator_as(control_plane, manifests, NAMESPACE, tmp_path):
        for example in sorted((ROOT / "examples").glob("*.yaml")):
            control_plane.kubectl("apply", "-f", str(example))
        children = (
            "/apis/apps/v1/namespaces/voice/deployments/aura-en",
            "/api/v1/namespaces/voice/services/aura-en",
            "/api/v1/namespaces/voice/configmaps/aura-en-config",
            "/apis/policy/v1/namespaces/voice/poddisruptionbudgets/aura-en",
            "/apis/networking.k8s.io/v1/namespaces/voice/networkpolicies/aura-en",
        )

        def missing_children() -> list[str]:
            return [path for path in children if get(control_plane, path) is None]

        def monitor_reported() -> bool:
            # The example asks for a ServiceMonitor and this cluster has no Prometheus Operator, so the
            # operator must say so (and say nothing else); wait for that report rather than race it.
            body = get(
                control_plane, f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends/aura-en"
            )
            return any(
                condition["type"] == "Degraded" and condition.get("reason") == "OptionalKindUnavailable"
                for condition in ((body or {}).get("status") or {}).get("conditions", [])
            ) and any(
                warning.startswith("OptionalKindUnavailable:")
                for warning in warnings_about(control_plane, NAMESPACE, "aura-en")
            )

        wait_for(
            lambda: not missing_children() and monitor_reported(),
            OPERATOR_DEADLINE_S,
            lambda: f"{missing_children()}; warnings: {warnings_about(control_plane, NAMESPACE, 'aura-en')}",
        )
        assert warnings_about(control_plane, NAMESPACE, "aura-en") == [
            "OptionalKindUnavailable: ServiceMonitor aura-en not written: "
            "its CustomResourceDefinition is not installed (404)"
        ]


def test_the_real_hpa_controller_scales_the_operators_deployment(
    control_plane: ControlPlane, helm: Path, release_namespace: str, tmp_path: Path
) -> None:
    """The HPA the operator writes is admitted by autoscaling/v2 validation, and the real controller
    resolves its target through the Deployment's /scale (AbleToScale)."""
    namespace = "voice-scaled"
    provisioning.create_namespaces(control_plane, (namespace,))
    manifests = chart_rbac(helm, "scaled", namespace)
    with operator_as(control_plane, manifests, namespace, tmp_path):
        start_backend(control_plane, namespace, "aura", autoscaling={"minReplicas": 1, "maxReplicas": 3})
        hpas = f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"

        def able_to_scale() -> dict[str, Any] | None:
            for hpa in (get(control_plane, hpas) or {"items": []})["items"]:
                for condition in hpa.get("status", {}).get("conditions") or []:
                    if condition["type"] == "AbleToScale" and condition["status"] == "True":
                        return dict(hpa)
            return None

        hpa = wait_for(
            able_to_scale,
            OPERATOR_DEADLINE_S,
            lambda: (
                f"AbleToScale from the HPA controller; HPAs: {get(control_plane, hpas)}; "
                f"warnings: {warnings_about(control_plane, namespace, 'aura')}"
            ),
        )
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "aura",
        }


def test_a_missing_watch_grant_is_reported_once_not_a_traceback_storm(
    control_plane: ControlPlane, helm: Path, release_namespace: str, tmp_path: Path
) -> None:
    """Without `watch` on Deployments kopf cannot keep its Deployment index: the operator says which
    resource and which verb the apiserver refused, in one log line per refusal (no traceback), and each
    backend in the namespace is Degraded with a Warning Event saying the same; granted again, it starts."""
    namespace = "voice-unwatched"
    provisioning.create_namespaces(control_plane, (namespace,))
    manifests = without_verb(chart_rbac(helm, "unwatched", namespace), "deployments", "watch")
    recheck = ("--rbac-recheck-s", "1")  # the backend may appear after the first check
    with operator_as(control_plane, manifests, namespace, tmp_path, recheck) as process:
        start_backend(control_plane, namespace, "aura")

        def refused() -> str | None:
            body = get(control_plane, f"/apis/ttsfleet.io/v1alpha1/namespaces/{namespace}/ttsbackends/aura")
            for condition in ((body or {}).get("status") or {}).get("conditions", []):
                if condition["type"] == "Degraded" and condition.get("reason") == "WatchForbidden":
                    return str(condition.get("message", ""))
            return None

        message = wait_for(refused, OPERATOR_DEADLINE_S, "the backend to report the forbidden watch")
        assert "deployments" in message and "watch" in message, message
        assert any(
            warning.startswith("WatchForbidden:")
            for warning in warnings_about(control_plane, namespace, "aura")
        )
        assert process.poll() is None, "the operator exited"
        # Once the grant is back (helm upgrade), the operator starts watching and reconciles.
        control_plane.kubectl(
            "apply", "-f", "-", stdin=yaml.safe_dump_all(chart_rbac(helm, "unwatched", namespace))
        )
        wait_for(
            lambda: get(control_plane, f"/apis/apps/v1/namespaces/{namespace}/deployments/aura"),
            OPERATOR_DEADLINE_S,
            "the Deployment once RBAC grants the watch",
        )
    log = (tmp_path / f"operator-{namespace}.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    reports = [
        line
        for line in log.splitlines()
        if f"forbids watch on deployments.apps in namespace {namespace}" in line
    ]
    assert len(reports) == 1, log[-3000:]  # reported once, not on every recheck
