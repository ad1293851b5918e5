"""The audit log: verbs, resources, subresources and user agents, in Python and at /_audit."""

from __future__ import annotations

import httpx

from tests.devcluster.conftest import CONFIGMAPS, DEPLOYMENTS, MERGE, deployment
from ttsfleet.devcluster.apiserver import ApiServer


async def test_every_request_is_recorded_with_its_kubernetes_verb(
    client: httpx.AsyncClient,
    apiserver: ApiServer,
) -> None:
    apiserver.audit.reset()
    headers = {"User-Agent": "ttsfleet-operator/test"}
    await client.post(DEPLOYMENTS, json=deployment("d"), headers=headers)
    await client.get(f"{DEPLOYMENTS}/d", headers=headers)
    await client.get("/apis/apps/v1/deployments", headers=headers)
    await client.patch(f"{DEPLOYMENTS}/d/status", json={"status": {}}, headers={**MERGE, **headers})
    await client.put(f"{DEPLOYMENTS}/d/scale", json={"spec": {"replicas": 2}}, headers=headers)
    await client.delete(f"{DEPLOYMENTS}/d", headers=headers)
    async with client.stream("GET", CONFIGMAPS, params={"watch": "true", "timeoutSeconds": "0"}):
        pass
    seen = [
        (r.verb, r.api_group, r.resource, r.subresource, r.namespace, r.name)
        for r in apiserver.audit.records(resource_only=True)
    ]
    assert seen == [
        ("create", "apps", "deployments", "", "default", ""),
        ("get", "apps", "deployments", "", "default", "d"),
        ("list", "apps", "deployments", "", "", ""),
        ("patch", "apps", "deployments", "status", "default", "d"),
        ("update", "apps", "deployments", "scale", "default", "d"),
        ("delete", "apps", "deployments", "", "default", "d"),
        ("watch", "", "configmaps", "", "default", ""),
    ]
    assert {r.user_agent for r in apiserver.audit.records()} >= {"ttsfleet-operator/test"}


async def test_discovery_is_recorded_as_a_non_resource_get(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    apiserver.audit.reset()
    await client.get("/apis")
    [record] = apiserver.audit.records()
    assert (record.verb, record.resource, record.path, record.is_resource_request) == (
        "get",
        "",
        "/apis",
        False,
    )
    assert apiserver.audit.records(resource_only=True) == []


async def test_the_audit_endpoint_serves_and_resets_the_log(client: httpx.AsyncClient) -> None:
    await client.delete("/_audit")
    await client.get(f"{CONFIGMAPS}/missing")
    items = (await client.get("/_audit")).json()["items"]
    assert items == [
        {
            "verb": "get",
            "apiGroup": "",
            "apiVersion": "v1",
            "resource": "configmaps",
            "subresource": "",
            "namespace": "default",
            "name": "missing",
            "userAgent": items[0]["userAgent"],
            "path": f"{CONFIGMAPS}/missing",
        }
    ]
    assert (await client.delete("/_audit")).status_code == 200
    assert (await client.get("/_audit")).json()["items"] == []
