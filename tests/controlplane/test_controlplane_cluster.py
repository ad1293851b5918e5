"""The control plane itself: the pinned version answers, the hardened settings hold, and the real
controllers (ReplicaSet, garbage collector, service-account tokens) act."""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx

from tests.controlplane.conftest import NAMESPACE
from tests.support.waiting import wait_for
from ttsfleet.devcluster.controlplane.launcher import ControlPlane


def test_server_and_kubectl_report_the_pinned_release(control_plane: ControlPlane) -> None:
    versions = json.loads(control_plane.kubectl("version", "-o", "json"))
    assert versions["serverVersion"]["gitVersion"] == control_plane.version
    assert versions["clientVersion"]["gitVersion"] == control_plane.version


def test_anonymous_requests_are_refused(control_plane: ControlPlane) -> None:
    trusting_the_ca = ssl.create_default_context(cafile=str(control_plane.credentials.ca.certificate))
    with httpx.Client(verify=trusting_the_ca, trust_env=False) as http:
        assert http.get(f"{control_plane.server}/api/v1/namespaces").status_code == 401


def test_restricted_namespaces_refuse_pods_that_may_run_as_root(control_plane: ControlPlane) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unconfined"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }
    with control_plane.admin_client() as http:
        response = http.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=pod)
    assert response.status_code == 403, response.text
    assert "violates PodSecurity" in response.json()["message"]


def test_deleting_a_deployment_collects_its_replicasets_and_pods(control_plane: ControlPlane) -> None:
    labels = {"app": "collected"}
    container: dict[str, Any] = {
        "name": "app",
        "image": "gateway:1",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "collected", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    deployments = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    replica_sets = f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"
    pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
    selector = {"labelSelector": "app=collected"}
    with control_plane.admin_client() as http:
        assert http.post(deployments, json=deployment).status_code == 201

        def count(path: str) -> int:
            return len(http.get(path, params=selector).json()["items"])

        wait_for(lambda: count(pods) == 2, 60, "two pods from the real ReplicaSet controller")
        deleted = http.request("DELETE", f"{deployments}/collected", json={"propagationPolicy": "Background"})
        assert deleted.status_code == 200, deleted.text
        wait_for(lambda: count(replica_sets) == 0, 60, "the garbage collector to delete the ReplicaSet")
        # Pods of no node are deleted at once: without a kubelet there is no graceful termination to wait for.
        wait_for(lambda: count(pods) == 0, 60, "the garbage collector to delete the pods")


def test_service_accounts_get_tokens_and_the_root_ca(control_plane: ControlPlane) -> None:
    with control_plane.admin_client() as http:

        def default_account() -> bool:
            return http.get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default").status_code == 200

        def root_ca() -> bool:
            return http.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/kube-root-ca.crt").status_code == 200

        wait_for(default_account, 30, "the default ServiceAccount")
        wait_for(root_ca, 30, "kube-root-ca.crt")
