"""PUT, merge patch, JSON patch and strategic merge: conflicts and results."""

from __future__ import annotations

import httpx

from tests.devcluster.conftest import CONFIGMAPS, DEPLOYMENTS, JSON_PATCH, MERGE, STRATEGIC, deployment


async def test_put_replaces_the_object(client: httpx.AsyncClient) -> None:
    created = (await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}, "data": {"a": "1"}})).json()
    replaced = await client.put(f"{CONFIGMAPS}/c", json=dict(created, data={"b": "2"}))
    assert replaced.status_code == 200
    assert replaced.json()["data"] == {"b": "2"}
    assert replaced.json()["metadata"]["uid"] == created["metadata"]["uid"]


async def test_put_with_a_stale_resource_version_is_a_conflict(client: httpx.AsyncClient) -> None:
    created = (await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}, "data": {"a": "1"}})).json()
    await client.put(f"{CONFIGMAPS}/c", json=dict(created, data={"a": "2"}))
    stale = await client.put(f"{CONFIGMAPS}/c", json=dict(created, data={"a": "3"}))
    assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
    assert (await client.get(f"{CONFIGMAPS}/c")).json()["data"] == {"a": "2"}


async def test_put_of_a_missing_object_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{CONFIGMAPS}/missing", json={"metadata": {"name": "missing"}})
    assert response.status_code == 404 and response.json()["reason"] == "NotFound"


async def test_merge_patch_with_a_stale_resource_version_is_a_conflict(client: httpx.AsyncClient) -> None:
    created = (await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})).json()
    stale_version = created["metadata"]["resourceVersion"]
    await client.patch(f"{CONFIGMAPS}/c", json={"data": {"a": "1"}}, headers=MERGE)
    stale = {"metadata": {"resourceVersion": stale_version}, "data": {"a": "2"}}
    assert (await client.patch(f"{CONFIGMAPS}/c", json=stale, headers=MERGE)).status_code == 409


async def test_merge_patch_merges_maps_and_null_deletes(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})
    patched = await client.patch(f"{CONFIGMAPS}/c", json={"data": {"a": None, "c": "3"}}, headers=MERGE)
    assert patched.json()["data"] == {"b": "2", "c": "3"}


async def test_json_patch_test_op_guards_the_write(client: httpx.AsyncClient) -> None:
    created = (await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})).json()
    version = created["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "add", "path": "/metadata/finalizers", "value": ["kopf.zalando.org/KopfFinalizerMarker"]},
    ]
    assert (await client.patch(f"{CONFIGMAPS}/c", json=ops, headers=JSON_PATCH)).status_code == 200
    failed = await client.patch(f"{CONFIGMAPS}/c", json=ops, headers=JSON_PATCH)
    assert failed.status_code == 422
    assert (await client.get(f"{CONFIGMAPS}/c")).json()["metadata"]["finalizers"] == [
        "kopf.zalando.org/KopfFinalizerMarker"
    ]


async def test_strategic_merge_merges_containers_by_name(client: httpx.AsyncClient) -> None:
    body = deployment("d")
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "app", "image": "gateway:1", "ports": [{"containerPort": 8080}]},
        {"name": "sidecar", "image": "proxy:1"},
    ]
    await client.post(DEPLOYMENTS, json=body)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{"name": "app", "image": "gateway:2"}],
                }
            }
        }
    }
    patched = (await client.patch(f"{DEPLOYMENTS}/d", json=patch, headers=STRATEGIC)).json()
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "app", "image": "gateway:2", "ports": [{"containerPort": 8080}]},
        {"name": "sidecar", "image": "proxy:1"},
    ]


async def test_an_unknown_patch_type_is_rejected(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
    response = await client.patch(f"{CONFIGMAPS}/c", content=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


async def test_delete_collection_honours_the_label_selector(client: httpx.AsyncClient) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        await client.post(CONFIGMAPS, json={"metadata": {"name": name, "labels": {"tier": tier}}})
    assert (await client.delete(CONFIGMAPS, params={"labelSelector": "tier=x"})).status_code == 200
    names = [item["metadata"]["name"] for item in (await client.get(CONFIGMAPS)).json()["items"]]
    assert names == ["c"]
