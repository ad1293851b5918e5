"""The two control planes the operator's integration tests run on, behind one small interface.

`embedded`: a fresh in-process API (devcluster/apiserver) per test; it holds the operator to the chart's
RBAC by user agent, records an audit log the tests read, and runs no controllers (tests write the status
a controller would). `kube-apiserver`: the suite's real control plane (tests/support/controlplane.py),
shared by every test: the operator logs in with a ServiceAccount token bound to the chart's RBAC only,
the real Deployment, ReplicaSet, garbage-collector and namespace controllers act, and a node agent runs
pods where a test needs them Ready. Each test there starts from an emptied `voice` namespace and leaves
the CRDs as crds/ has them.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support import helm
from tests.support.helm import RELEASE, RELEASE_NAMESPACE, Manifest
from tests.support.servers import ServerProcess
from tests.support.waiting import wait_until
from ttsfleet.devcluster.apiserver import ApiServer, AuditRecord
from ttsfleet.devcluster.controlplane import provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.nodeagent import stack

EMBEDDED = "embedded"
KUBE_APISERVER = "kube-apiserver"
CONTROL_PLANES = (EMBEDDED, KUBE_APISERVER)
NAMESPACE = "voice"
SERVICE_ACCOUNT = f"{RELEASE}-ttsfleet"
OPERATOR_USER = f"system:serviceaccount:{RELEASE_NAMESPACE}:{SERVICE_ACCOUNT}"
# How the embedded API, which has no authentication, tells the operator's requests apart.
OPERATOR_AGENTS = ("ttsfleet-operator/", "kopf/")
CRD_DIR = Path(__file__).resolve().parents[3] / "crds"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
BACKEND_CRD = "ttsbackends.ttsfleet.io"
BACKENDS = f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends"
ALL_BACKENDS = "/apis/ttsfleet.io/v1alpha1/ttsbackends"
# CRDs a test may install for itself (the Prometheus Operator's): removed again after it, so that the
# next test sees a cluster without them.
TEST_INSTALLED_CRDS = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")
# Everything a test leaves in the namespace, emptied before and after each test (paths under it).
NAMESPACED_KINDS = (
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/apis/apps/v1/namespaces/{ns}/replicasets",
    "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
    "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "/api/v1/namespaces/{ns}/services",
    "/api/v1/namespaces/{ns}/configmaps",
    "/api/v1/namespaces/{ns}/secrets",
    "/api/v1/namespaces/{ns}/events",
    "/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors",
    "/apis/monitoring.coreos.com/v1/namespaces/{ns}/prometheusrules",
    "/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings",
)
SETTLE_DEADLINE_S = 60.0
NODE = "ttsfleet-integration"


def calls_in_audit_log(path: Path, offset: int, user: str) -> list[AuditRecord]:
    """The resource requests `user` made, from kube-apiserver's JSON audit log past `offset` (a long
    request, a watch, is logged when it starts and again when it ends: counted once)."""
    seen: set[str] = set()
    found = []
    with path.open("rb") as log:
        log.seek(offset)
        for line in log:
            event = json.loads(line)
            ref = event.get("objectRef")
            if event["user"]["username"] != user or not ref or event["auditID"] in seen:
                continue
            seen.add(event["auditID"])
            found.append(
                AuditRecord(
                    verb=event["verb"],
                    api_group=ref.get("apiGroup", ""),
                    api_version=ref.get("apiVersion", ""),
                    resource=ref.get("resource", ""),
                    subresource=ref.get("subresource", ""),
                    namespace=ref.get("namespace", ""),
                    name=ref.get("name", ""),
                    user_agent=event.get("userAgent", ""),
                    path=event.get("requestURI", ""),
                )
            )
    return found


@dataclass
class Cluster:
    """Where a test's API and operator point, and what differs between the two control planes."""

    name: str
    base_url: str
    verify: ssl.SSLContext | bool = True
    # Settings that make the operator log in: the embedded API's URL, or a ServiceAccount kubeconfig.
    operator_login: dict[str, Any] = field(default_factory=dict)
    server: ApiServer | None = None
    plane: ControlPlane | None = None
    workdir: Path | None = None
    audit_offset: int = 0

    def mark_calls(self) -> None:
        """Forget the operator's requests so far: `operator_calls` returns only later ones."""
        if self.server is not None:
            self.server.audit.reset()
        if self.plane is not None:
            self.audit_offset = self.plane.audit_log.stat().st_size

    def operator_calls(self) -> list[AuditRecord]:
        """The resource requests the operator made since `mark_calls`: the embedded API knows it by its
        user agent, kube-apiserver's audit log by its ServiceAccount."""
        if self.plane is not None:
            return calls_in_audit_log(self.plane.audit_log, self.audit_offset, OPERATOR_USER)
        assert self.server is not None
        return [
            record
            for record in self.server.audit.records(resource_only=True)
            if record.user_agent.startswith(OPERATOR_AGENTS)
        ]

    @property
    def is_real(self) -> bool:
        return self.plane is not None

    def client(self, timeout_s: float = 10.0) -> httpx.AsyncClient:
        """An administrator's client (the test's own hands)."""
        return httpx.AsyncClient(
            base_url=self.base_url, verify=self.verify, timeout=timeout_s, trust_env=False
        )


async def put_or_post(http: httpx.AsyncClient, collection: str, manifest: Manifest) -> None:
    """Create `manifest` in `collection`, or replace what is stored under its name."""
    path = f"{collection}/{manifest['metadata']['name']}"
    existing = await http.get(path)
    if existing.status_code == 200:
        body = {**manifest, "metadata": {**manifest["metadata"], **_version_of(existing.json())}}
        response = await http.put(path, json=body)
    else:
        response = await http.post(collection, json=manifest)
    assert response.is_success, response.text


def _version_of(stored: Mapping[str, Any]) -> dict[str, Any]:
    return {"resourceVersion": stored["metadata"]["resourceVersion"]}


def rbac_collection(manifest: Manifest) -> str:
    plural = f"{manifest['kind'].lower()}s"
    namespace = manifest["metadata"].get("namespace")
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/rbac.authorization.k8s.io/v1{where}/{plural}"


async def store_rbac(http: httpx.AsyncClient, manifests: Iterable[Manifest]) -> None:
    for manifest in manifests:
        await put_or_post(http, rbac_collection(manifest), manifest)


async def wait_until_granted(http: httpx.AsyncClient, manifests: Iterable[Manifest]) -> None:
    """Until the apiserver's RBAC authorizer (fed by its informers) grants every rule just stored."""
    user = OPERATOR_USER
    checks = [
        {"group": group, "resource": resource.split("/")[0], "verb": verb, "namespace": scope or NAMESPACE}
        | ({"subresource": resource.split("/")[1]} if "/" in resource else {})
        for scope, grants in helm.operator_grants(manifests, SERVICE_ACCOUNT).items()
        for group, resource, verb in sorted(grants)
    ]
    for attributes in checks:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:serviceaccounts"], "resourceAttributes": attributes},
        }
        # The authorizer's informer catches up with what was just stored.
        await wait_until(
            lambda review=review: _is_allowed(http, review),
            SETTLE_DEADLINE_S,
            f"RBAC to grant {attributes}",
            interval_s=0.05,
        )


async def _is_allowed(http: httpx.AsyncClient, review: Manifest) -> bool:
    answer = await http.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review)
    answer.raise_for_status()
    return bool(answer.json()["status"].get("allowed"))


def prepare_real(plane: ControlPlane, workdir: Path) -> Cluster:
    """Once per run: the namespaces, the chart's ServiceAccount and a kubeconfig holding its token."""
    provisioning.create_namespaces(plane, (NAMESPACE, RELEASE_NAMESPACE))
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT}}
    with plane.admin_client() as http:
        created = http.post(f"/api/v1/namespaces/{RELEASE_NAMESPACE}/serviceaccounts", json=account)
        assert created.status_code in (201, 409), created.text
    kubeconfig = provisioning.service_account_kubeconfig(
        plane, RELEASE_NAMESPACE, SERVICE_ACCOUNT, workdir / "operator.kubeconfig"
    )
    return Cluster(
        name=KUBE_APISERVER,
        base_url=plane.server,
        verify=plane.admin_tls(),
        operator_login={"kubeconfig": kubeconfig},
        plane=plane,
        workdir=workdir,
    )


async def empty_namespace(http: httpx.AsyncClient) -> None:
    """Remove what earlier tests left in `voice`, and every backend in the cluster (kopf's finalizer
    dropped: no operator runs between tests); pods without waiting for a kubelet.

    Backends anywhere count: other suites leave theirs behind, and one held by a finalizer keeps a deleted
    CRD terminating, which refuses every new backend."""
    listed = await http.get(ALL_BACKENDS)
    for item in listed.json().get("items", []) if listed.status_code == 200 else []:
        metadata = item["metadata"]
        path = f"/apis/ttsfleet.io/v1alpha1/namespaces/{metadata['namespace']}/ttsbackends/{metadata['name']}"
        if metadata.get("finalizers"):
            drop = {"metadata": {"finalizers": None}}
            await http.patch(path, json=drop, headers={"Content-Type": "application/merge-patch+json"})
        await http.delete(path)
    for collection in NAMESPACED_KINDS:
        response = await http.delete(collection.format(ns=NAMESPACE))
        assert response.status_code in (200, 404), response.text
    pods = await http.delete(f"/api/v1/namespaces/{NAMESPACE}/pods", params={"gracePeriodSeconds": 0})
    assert pods.status_code == 200, pods.text


def crd_documents() -> dict[str, Manifest]:
    return {
        document["metadata"]["name"]: document
        for path in sorted(CRD_DIR.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document and document.get("kind") == "CustomResourceDefinition"
    }


async def restore_crds(http: httpx.AsyncClient, versions_before: Mapping[str, str]) -> None:
    """Put crds/ back as it was before the test (a test may replace, strip or delete it) and remove the
    CRDs a test installed for itself; wait until the apiserver serves the result."""
    for name in TEST_INSTALLED_CRDS:
        if (await http.delete(f"{CRDS}/{name}")).status_code == 200:
            await wait_until(
                lambda name=name: _status_of(http, f"{CRDS}/{name}", 404),
                SETTLE_DEADLINE_S,
                f"CRD {name} removed",
            )
    for name, document in crd_documents().items():
        stored = await http.get(f"{CRDS}/{name}")
        if stored.status_code == 200 and stored.json()["metadata"]["resourceVersion"] == versions_before.get(
            name
        ):
            continue
        if stored.status_code == 200 and stored.json()["metadata"].get("deletionTimestamp"):
            await wait_until(
                lambda name=name: _status_of(http, f"{CRDS}/{name}", 404),
                SETTLE_DEADLINE_S,
                f"CRD {name} gone",
            )
        await put_or_post(http, CRDS, document)
        await wait_until(
            lambda: _schema_enforced(http),
            SETTLE_DEADLINE_S,
            "the restored CRD's schema and CEL rules enforced",
        )


async def crd_versions(http: httpx.AsyncClient) -> dict[str, str]:
    versions = {}
    for name in crd_documents():
        stored = await http.get(f"{CRDS}/{name}")
        if stored.status_code == 200:
            versions[name] = stored.json()["metadata"]["resourceVersion"]
    return versions


async def _status_of(http: httpx.AsyncClient, path: str, status: int) -> bool:
    return (await http.get(path)).status_code == status


async def _schema_enforced(http: httpx.AsyncClient) -> bool:
    """A dry-run create that breaks the schema, and one that breaks a CEL rule, are both refused."""
    spec = {"image": "x", "deepgram": {"apiKeySecretRef": {"name": "k"}}}
    probes = ({"replicas": "three"}, {"replicas": 1, "autoscaling": {"minReplicas": 1, "maxReplicas": 2}})
    for extra in probes:
        body = {
            "apiVersion": "ttsfleet.io/v1alpha1",
            "kind": "TTSBackend",
            "metadata": {"name": "schema-probe"},
            "spec": {**spec, **extra},
        }
        answer = await http.post(BACKENDS, json=body, params={"dryRun": "All"})
        if answer.status_code != 422:
            return False
    return True


async def wait_until_served(http: httpx.AsyncClient, crd: Manifest) -> None:
    """Until the apiserver serves the kind of `crd` just created (it is Established asynchronously)."""
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served", True))
    where = f"/namespaces/{NAMESPACE}" if spec["scope"] == "Namespaced" else ""
    path = f"/apis/{spec['group']}/{version}{where}/{spec['names']['plural']}"
    await wait_until(
        lambda: _status_of(http, path, 200), SETTLE_DEADLINE_S, f"{spec['names']['plural']} served"
    )


@contextlib.asynccontextmanager
async def running_node(cluster: Cluster, upstream: ServerProcess, state: Path) -> AsyncIterator[stack.Node]:
    """The node agent (pods as local gateway processes, the emulator as Deepgram) on the real cluster;
    the Node is removed on exit, so later tests are not scheduled onto a node with no agent."""
    assert cluster.plane is not None
    async with stack.running_node(cluster.plane, state, NODE, upstream.ws_url) as node:
        try:
            yield node
        finally:
            async with cluster.client() as http:
                await http.delete(f"/api/v1/nodes/{NODE}")
