"""What a fresh cluster needs before the fleet runs on it: namespaces held to the `restricted` Pod
Security Standard, the CRD, and a kubeconfig that acts as a ServiceAccount (never as an admin)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from ttsfleet.devcluster.controlplane import kubeconfigs
from ttsfleet.devcluster.controlplane.launcher import ControlPlane

POD_SECURITY = "pod-security.kubernetes.io"
TOKEN_LIFETIME_S = 24 * 3600
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def restricted_namespace(name: str) -> dict[str, Any]:
    """A Namespace whose pods must meet the `restricted` Pod Security Standard (enforced, not only warned)."""
    labels = {f"{POD_SECURITY}/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    labels[f"{POD_SECURITY}/enforce-version"] = "latest"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def create_namespaces(plane: ControlPlane, names: tuple[str, ...]) -> None:
    with plane.admin_client() as http:
        for name in names:
            response = http.post("/api/v1/namespaces", json=restricted_namespace(name))
            if response.status_code not in (201, 409):
                raise RuntimeError(f"creating namespace {name}: {response.status_code} {response.text}")


def apply_crds(plane: ControlPlane, directory: Path, deadline_s: float = 60.0) -> None:
    """Apply every CRD in `directory` the way users do, and wait until the apiserver serves them."""
    plane.kubectl("apply", "--server-side", "-f", str(directory))
    names = [
        document["metadata"]["name"]
        for path in sorted(directory.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document and document.get("kind") == "CustomResourceDefinition"
    ]
    deadline = time.monotonic() + deadline_s
    with plane.admin_client() as http:
        for name in names:
            while not _established(http.get(f"{CRDS}/{name}").json()):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} not Established within {deadline_s} s")
                time.sleep(0.1)  # polling the apiserver's own status, bounded by the deadline


def _established(crd: dict[str, Any]) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def service_account_kubeconfig(plane: ControlPlane, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig holding a TokenRequest token of `namespace/name`: whoever uses it has that
    ServiceAccount's RBAC and nothing more."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": TOKEN_LIFETIME_S},
    }
    with plane.admin_client() as http:
        response = http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", json=request)
    if response.status_code != 201:
        raise RuntimeError(f"token for {namespace}/{name}: {response.status_code} {response.text}")
    token = response.json()["status"]["token"]
    user = f"system:serviceaccount:{namespace}:{name}"
    return kubeconfigs.write_token(
        path,
        server=plane.server,
        ca=plane.credentials.ca.certificate,
        user=user,
        token=token,
        namespace=namespace,
    )
