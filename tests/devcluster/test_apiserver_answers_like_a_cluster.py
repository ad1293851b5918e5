"""Where the operator (or kubectl) could tell the embedded API from a real one, it answers as a real one.

404 for an add-on group whose CRD is not applied, 403 for what RBAC does not grant (and for blocking
ownerReferences without `update` on the owner's finalizers), 415 for strategic-merge patches on custom
resources, 422 for what a CRD's schema or CEL rules refuse (/scale included). `kubectl create
namespace`, which posts protobuf, is in test_apiserver_kubectl.py.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.devcluster.conftest import (  # type: ignore[import-not-found]
    CRD_PATH,
    MERGE,
    STRATEGIC,
    WIDGETS,
    widget_crd,
)
from tests.support.monitoring import PROMETHEUS_RULE_CRD, SERVICE_MONITOR_CRD
from ttsfleet.devcluster.apiserver import ApiServer, authorization
from ttsfleet.operator import crd

AGENT = "robot/1.0"
USER = authorization.service_account_user("ops", "robot")
ROBOT = {"User-Agent": AGENT}
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


async def test_monitoring_kinds_are_served_only_once_their_crds_exist(client: httpx.AsyncClient) -> None:
    smons = "/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors"
    assert (await client.post(smons, json={"metadata": {"name": "m"}})).status_code == 404
    assert (await client.get("/apis/monitoring.coreos.com/v1")).status_code == 404
    for definition in (SERVICE_MONITOR_CRD, PROMETHEUS_RULE_CRD):
        assert (await client.post(CRD_PATH, json=definition)).status_code == 201
    assert (await client.post(smons, json={"metadata": {"name": "m"}})).status_code == 201
    rules = "/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules"
    assert (await client.get(rules)).status_code == 200


def role(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "robot", "namespace": "default"}, "rules": rules}


def binding() -> dict[str, Any]:
    return {
        "metadata": {"name": "robot", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "robot"},
        "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "ops"}],
    }


async def test_a_named_caller_gets_only_what_its_bindings_grant(
    apiserver: ApiServer, client: httpx.AsyncClient
) -> None:
    apiserver.identities = authorization.Identities({AGENT: USER})
    read_only = role([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}])
    assert (await client.post(f"{RBAC}/namespaces/default/roles", json=read_only)).status_code == 201
    assert (await client.post(f"{RBAC}/namespaces/default/rolebindings", json=binding())).status_code == 201
    assert (await client.get(CONFIGMAPS, headers=ROBOT)).status_code == 200
    refused = await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}}, headers=ROBOT)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "Forbidden"
    assert refused.json()["message"] == (
        f'configmaps is forbidden: User "{USER}" cannot create resource "configmaps" in API group "" '
        'in the namespace "default"'
    )
    elsewhere = await client.get("/api/v1/namespaces/kube-system/configmaps", headers=ROBOT)
    assert elsewhere.status_code == 403, "a RoleBinding grants only in its own namespace"
    # Anyone not named is an administrator, as a developer's kubectl is.
    assert (await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})).status_code == 201


async def test_blocking_owner_references_need_update_on_the_owners_finalizers(
    apiserver: ApiServer, client: httpx.AsyncClient
) -> None:
    assert (await client.post(CRD_PATH, json=widget_crd())).status_code == 201
    owner = (await client.post(WIDGETS, json={"metadata": {"name": "w"}})).json()
    apiserver.identities = authorization.Identities({AGENT: USER})
    create = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}
    assert (await client.post(f"{RBAC}/namespaces/default/roles", json=role([create]))).status_code == 201
    assert (await client.post(f"{RBAC}/namespaces/default/rolebindings", json=binding())).status_code == 201
    reference = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "name": "w",
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    child = {"metadata": {"name": "child", "ownerReferences": [reference]}}
    refused = await client.post(CONFIGMAPS, json=child, headers=ROBOT)
    assert refused.status_code == 403
    assert 'cannot update resource "widgets" subresource "finalizers"' in refused.json()["message"]
    finalizers = {"apiGroups": ["example.dev"], "resources": ["widgets/finalizers"], "verbs": ["update"]}
    granted = role([create, finalizers])
    (await client.put(f"{RBAC}/namespaces/default/roles/robot", json=granted)).raise_for_status()
    assert (await client.post(CONFIGMAPS, json=child, headers=ROBOT)).status_code == 201


async def test_strategic_merge_patches_on_custom_resources_are_unsupported(client: httpx.AsyncClient) -> None:
    assert (await client.post(CRD_PATH, json=widget_crd())).status_code == 201
    assert (await client.post(WIDGETS, json={"metadata": {"name": "w"}})).status_code == 201
    patched = await client.patch(f"{WIDGETS}/w", json={"spec": {"size": 2}}, headers=STRATEGIC)
    assert patched.status_code == 415
    assert patched.json()["reason"] == "UnsupportedMediaType"


async def test_scale_writes_are_checked_against_the_crds_rules(client: httpx.AsyncClient) -> None:
    assert (await client.post(CRD_PATH, json=crd.build_crd())).status_code == 201
    backends = "/apis/ttsfleet.io/v1alpha1/namespaces/default/ttsbackends"
    spec = {"image": "i", "deepgram": {"apiKeySecretRef": {"name": "k"}}, "auth": {"enabled": False}}
    autoscaled = {"metadata": {"name": "auto"}, "spec": {**spec, "autoscaling": {"maxReplicas": 4}}}
    assert (await client.post(backends, json=autoscaled)).status_code == 201
    # What `kubectl scale ttsb/auto --replicas=3` sends: the HPA owns the count, so the CEL rule refuses it.
    scaled = await client.patch(f"{backends}/auto/scale", json={"spec": {"replicas": 3}}, headers=MERGE)
    assert scaled.status_code == 422
    assert "replicas or autoscaling" in scaled.json()["message"]
    fixed = {"metadata": {"name": "fixed"}, "spec": {**spec, "replicas": 1}}
    assert (await client.post(backends, json=fixed)).status_code == 201
    scaled = await client.patch(f"{backends}/fixed/scale", json={"spec": {"replicas": 3}}, headers=MERGE)
    assert scaled.status_code == 200 and scaled.json()["spec"]["replicas"] == 3
    # The schema is enforced too: a negative quantity does not match the Quantity pattern.
    negative = {"metadata": {"name": "neg"}, "spec": {**spec, "resources": {"requests": {"cpu": "-1"}}}}
    assert (await client.post(backends, json=negative)).status_code == 422


APPLY = {"Content-Type": "application/apply-patch+yaml"}


def service(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "annotations": annotations},
        "spec": {"selector": {"app": "a"}, "ports": [{"name": "http", "port": 80}]},
    }


async def test_server_side_apply_removes_what_a_manager_dropped_and_keeps_what_others_set(
    client: httpx.AsyncClient,
) -> None:
    services = "/api/v1/namespaces/default/services"
    applied = await client.patch(
        f"{services}/svc?fieldManager=op&force=true", json=service({"a": "1", "b": "2"}), headers=APPLY
    )
    assert applied.is_success, applied.text
    other = {"metadata": {"annotations": {"mesh.example/inject": "true"}}}
    (await client.patch(f"{services}/svc?fieldManager=mesh", json=other, headers=MERGE)).raise_for_status()
    again = await client.patch(
        f"{services}/svc?fieldManager=op&force=true", json=service({"a": "1"}), headers=APPLY
    )
    assert again.status_code == 200, again.text
    assert again.json()["metadata"]["annotations"] == {"a": "1", "mesh.example/inject": "true"}
    managers = {entry["manager"] for entry in again.json()["metadata"]["managedFields"]}
    assert managers == {"op", "mesh"}
    version = again.json()["metadata"]["resourceVersion"]
    same = await client.patch(
        f"{services}/svc?fieldManager=op&force=true", json=service({"a": "1"}), headers=APPLY
    )
    assert same.json()["metadata"]["resourceVersion"] == version, "a no-op apply wrote"


async def test_applying_a_field_another_manager_owns_conflicts_unless_forced(
    client: httpx.AsyncClient,
) -> None:
    services = "/api/v1/namespaces/default/services"
    first = service({"team": "a"})
    (await client.patch(f"{services}/svc?fieldManager=op", json=first, headers=APPLY)).raise_for_status()
    taken = {"metadata": {"annotations": {"team": "b"}}}
    (await client.patch(f"{services}/svc?fieldManager=edit", json=taken, headers=MERGE)).raise_for_status()
    refused = await client.patch(f"{services}/svc?fieldManager=op", json=first, headers=APPLY)
    assert refused.status_code == 409
    assert 'conflict with "edit"' in refused.json()["message"]
    forced = await client.patch(f"{services}/svc?fieldManager=op&force=true", json=first, headers=APPLY)
    assert forced.status_code == 200 and forced.json()["metadata"]["annotations"] == {"team": "a"}
