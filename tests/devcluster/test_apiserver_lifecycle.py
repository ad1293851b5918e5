"""resourceVersion, uid, timestamps, generation, generateName, finalizers and namespaces."""

from __future__ import annotations

import httpx

from tests.devcluster.conftest import CONFIGMAPS, DEPLOYMENTS, JSON_PATCH, MERGE, deployment
from ttsfleet.devcluster.apiserver import ApiServer


async def test_default_and_kube_system_namespaces_exist_at_start(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/v1/namespaces")).json()
    assert listed["kind"] == "NamespaceList"
    assert {item["metadata"]["name"] for item in listed["items"]} == {"default", "kube-system"}
    assert (await client.get("/api/v1/namespaces/kube-system")).json()["status"]["phase"] == "Active"


async def test_create_assigns_identity_and_a_global_monotonic_resource_version(
    client: httpx.AsyncClient,
) -> None:
    first = (await client.post(CONFIGMAPS, json={"metadata": {"name": "a"}})).json()
    second = (await client.post(DEPLOYMENTS, json=deployment("b"))).json()
    metadata = first["metadata"]
    assert metadata["uid"] and metadata["creationTimestamp"].endswith("Z") and metadata["generation"] == 1
    assert int(second["metadata"]["resourceVersion"]) > int(metadata["resourceVersion"])
    assert first["apiVersion"] == "v1" and first["kind"] == "ConfigMap"


async def test_list_carries_kind_api_version_and_the_latest_resource_version(
    client: httpx.AsyncClient,
) -> None:
    created = (await client.post(DEPLOYMENTS, json=deployment("d"))).json()
    listed = (await client.get(DEPLOYMENTS)).json()
    assert (listed["apiVersion"], listed["kind"]) == ("apps/v1", "DeploymentList")
    assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    assert listed["items"][0]["kind"] == "Deployment"


async def test_generation_grows_on_spec_changes_only(client: httpx.AsyncClient) -> None:
    await client.post(DEPLOYMENTS, json=deployment("d"))
    url = f"{DEPLOYMENTS}/d"
    labelled = (await client.patch(url, json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)).json()
    assert labelled["metadata"]["generation"] == 1
    scaled = (await client.patch(url, json={"spec": {"replicas": 4}}, headers=MERGE)).json()
    assert scaled["metadata"]["generation"] == 2
    status = (await client.patch(f"{url}/status", json={"status": {"replicas": 4}}, headers=MERGE)).json()
    assert status["metadata"]["generation"] == 2
    assert status["status"] == {"replicas": 4}


async def test_a_write_that_changes_nothing_keeps_the_resource_version(client: httpx.AsyncClient) -> None:
    created = (await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}, "data": {"k": "v"}})).json()
    same = (await client.patch(f"{CONFIGMAPS}/c", json={"data": {"k": "v"}}, headers=MERGE)).json()
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_generate_name_gives_distinct_names(client: httpx.AsyncClient) -> None:
    bodies = [{"metadata": {"generateName": "kopf-event-"}, "reason": "Test"} for _ in range(3)]
    created = [await client.post("/api/v1/namespaces/default/events", json=body) for body in bodies]
    names = {response.json()["metadata"]["name"] for response in created}
    assert all(response.status_code == 201 for response in created)
    assert len(names) == 3 and all(name.startswith("kopf-event-") and len(name) == 16 for name in names)


async def test_creating_an_existing_name_is_a_conflict(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
    again = await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
    assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"


async def test_creating_in_a_missing_namespace_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/namespaces/nowhere/configmaps", json={"metadata": {"name": "c"}})
    assert response.status_code == 404


async def test_delete_with_finalizers_waits_until_they_are_removed(
    client: httpx.AsyncClient,
    apiserver: ApiServer,
) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "f", "finalizers": ["x/y"]}})
    marked = (await client.delete(f"{CONFIGMAPS}/f")).json()
    assert marked["metadata"]["deletionTimestamp"]
    assert (await client.get(f"{CONFIGMAPS}/f")).status_code == 200
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": marked["metadata"]["resourceVersion"]},
        {"op": "remove", "path": "/metadata/finalizers"},
    ]
    assert (await client.patch(f"{CONFIGMAPS}/f", json=ops, headers=JSON_PATCH)).status_code == 200
    assert (await client.get(f"{CONFIGMAPS}/f")).status_code == 404
    assert apiserver.get_object("v1/configmaps", "default", "f") is None


async def test_deleting_a_namespace_deletes_its_objects(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await client.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    await client.post("/api/v1/namespaces/team/configmaps", json={"metadata": {"name": "c"}})
    assert (await client.delete("/api/v1/namespaces/team")).status_code == 200
    assert apiserver.list_objects("v1/configmaps", "team") == []
