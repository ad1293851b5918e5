"""The CRD from crds/ on the real kube-apiserver: structural schema, defaults, pruning, CEL (also through
/scale), the printer columns `kubectl get ttsb` shows, and discovery without the Prometheus Operator."""

from __future__ import annotations

from typing import Any

import pytest

from tests.controlplane.conftest import NAMESPACE
from tests.operator.integration.conftest import backend  # type: ignore[import-not-found]
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.protocol.voices import DEFAULT_VOICE

BACKENDS = f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends"
MERGE = {"Content-Type": "application/merge-patch+json"}


def create(plane: ControlPlane, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    with plane.admin_client() as http:
        response = http.post(BACKENDS, json=body)
    return response.status_code, response.json()


def causes(status: dict[str, Any]) -> str:
    return " ".join(cause.get("message", "") for cause in status.get("details", {}).get("causes", []))


def test_the_crd_is_established_from_the_manifest(control_plane: ControlPlane) -> None:
    names = control_plane.kubectl("get", "crd", "-o", "name")
    assert "customresourcedefinition.apiextensions.k8s.io/ttsbackends.ttsfleet.io" in names.split()


def test_defaults_are_filled_and_unknown_fields_pruned(control_plane: ControlPlane) -> None:
    body = backend("defaults", replicas=1)
    body["spec"]["notAField"] = "dropped"
    status, created = create(control_plane, body)
    assert status == 201, created
    assert "notAField" not in created["spec"], "the structural schema prunes unknown fields"
    assert created["spec"]["deepgram"]["model"] == DEFAULT_VOICE
    assert created["spec"]["deepgram"]["apiKeySecretRef"]["key"] == "api-key"


def test_schema_violations_answer_422(control_plane: ControlPlane) -> None:
    status, answer = create(control_plane, backend("bad-type", replicas="three"))
    assert status == 422, answer
    assert "spec.replicas" in causes(answer)


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        (
            "both-scalers",
            {"replicas": 2, "autoscaling": {"minReplicas": 1, "maxReplicas": 3}},
            "set either replicas or autoscaling, not both",
        ),
        (
            "min-over-max",
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
            "minReplicas must not exceed",
        ),
    ],
)
def test_cel_rules_reject_on_create(
    control_plane: ControlPlane, name: str, spec: dict[str, Any], message: str
) -> None:
    status, answer = create(control_plane, backend(name, **spec))
    assert status == 422, answer
    assert message in answer["message"]


def test_cel_rules_hold_through_the_scale_subresource(control_plane: ControlPlane) -> None:
    status, created = create(
        control_plane, backend("autoscaled", autoscaling={"minReplicas": 1, "maxReplicas": 3})
    )
    assert status == 201, created
    with control_plane.admin_client() as http:
        scaled = http.patch(f"{BACKENDS}/autoscaled/scale", json={"spec": {"replicas": 2}}, headers=MERGE)
    assert scaled.status_code == 422, scaled.text
    assert "set either replicas or autoscaling, not both" in scaled.json()["message"]


def test_kubectl_scale_changes_spec_replicas(control_plane: ControlPlane) -> None:
    status, created = create(control_plane, backend("scaled", replicas=1))
    assert status == 201, created
    control_plane.kubectl("scale", "-n", NAMESPACE, "ttsb/scaled", "--replicas=3")
    with control_plane.admin_client() as http:
        assert http.get(f"{BACKENDS}/scaled").json()["spec"]["replicas"] == 3


def test_kubectl_get_shows_the_printer_columns(control_plane: ControlPlane) -> None:
    status, created = create(control_plane, backend("columns", replicas=1))
    assert status == 201, created
    with control_plane.admin_client() as http:
        patched = http.patch(
            f"{BACKENDS}/columns/status",
            json={
                "status": {
                    "replicas": 1,
                    "endpoint": "ws://columns.voice.svc.cluster.local/v1/speak",
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "Progressing",
                            "message": "rolling out",
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                        }
                    ],
                }
            },
            headers=MERGE,
        )
    assert patched.status_code == 200, patched.text
    table = control_plane.kubectl("get", "ttsb", "columns", "-n", NAMESPACE).splitlines()
    assert table[0].split() == ["NAME", "READY", "REPLICAS", "DESIRED", "ENDPOINT", "REASON", "AGE"]
    # DESIRED is blank: without an autoscaler nothing but the spec asks for a count.
    assert table[1][table[0].index("DESIRED") : table[0].index("ENDPOINT")].strip() == ""
    assert table[1].split()[:5] == [
        "columns",
        "False",
        "1",
        "ws://columns.voice.svc.cluster.local/v1/speak",
        "Progressing",
    ]


def test_servicemonitors_are_absent_without_the_prometheus_operator(control_plane: ControlPlane) -> None:
    with control_plane.admin_client() as http:
        group = http.get("/apis/monitoring.coreos.com/v1")
        listing = http.get(f"/apis/monitoring.coreos.com/v1/namespaces/{NAMESPACE}/servicemonitors")
    assert group.status_code == 404
    assert listing.status_code == 404
