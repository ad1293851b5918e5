"""The /status and /scale subresources, for Deployments and for custom resources that declare them."""

from __future__ import annotations

import httpx
import pytest

from tests.devcluster.conftest import (
    CONFIGMAPS,
    CRD_PATH,
    DEPLOYMENTS,
    MERGE,
    WIDGETS,
    deployment,
    widget_crd,
)


@pytest.fixture
async def widgets(client: httpx.AsyncClient) -> str:
    assert (await client.post(CRD_PATH, json=widget_crd())).status_code == 201
    return WIDGETS


async def test_status_writes_change_only_status(client: httpx.AsyncClient) -> None:
    await client.post(DEPLOYMENTS, json=deployment("d"))
    written = await client.put(
        f"{DEPLOYMENTS}/d/status", json={**deployment("d", replicas=9), "status": {"readyReplicas": 1}}
    )
    assert written.status_code == 200
    stored = (await client.get(f"{DEPLOYMENTS}/d")).json()
    assert stored["status"] == {"readyReplicas": 1}
    assert stored["spec"]["replicas"] == 1


async def test_main_resource_writes_ignore_status(client: httpx.AsyncClient) -> None:
    await client.post(DEPLOYMENTS, json=dict(deployment("d"), status={"replicas": 5}))
    assert "status" not in (await client.get(f"{DEPLOYMENTS}/d")).json()
    await client.patch(f"{DEPLOYMENTS}/d/status", json={"status": {"replicas": 1}}, headers=MERGE)
    patched = (await client.patch(f"{DEPLOYMENTS}/d", json={"status": {"replicas": 7}}, headers=MERGE)).json()
    assert patched["status"] == {"replicas": 1}


async def test_resources_without_status_subresource_have_no_status_path(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
    assert (await client.get(f"{CONFIGMAPS}/c/status")).status_code == 404


async def test_deployment_scale_reads_and_writes_replicas(client: httpx.AsyncClient) -> None:
    await client.post(DEPLOYMENTS, json=deployment("d", replicas=2))
    scale = (await client.get(f"{DEPLOYMENTS}/d/scale")).json()
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"] == {"replicas": 2} and scale["status"]["selector"] == "app=d"
    patched = await client.patch(f"{DEPLOYMENTS}/d/scale", json={"spec": {"replicas": 5}}, headers=MERGE)
    assert patched.json()["spec"]["replicas"] == 5
    put = await client.put(f"{DEPLOYMENTS}/d/scale", json=dict(patched.json(), spec={"replicas": 3}))
    assert put.json()["spec"]["replicas"] == 3
    stored = (await client.get(f"{DEPLOYMENTS}/d")).json()
    assert stored["spec"]["replicas"] == 3 and stored["metadata"]["generation"] == 3


async def test_scale_put_with_a_stale_resource_version_is_a_conflict(client: httpx.AsyncClient) -> None:
    await client.post(DEPLOYMENTS, json=deployment("d"))
    scale = (await client.get(f"{DEPLOYMENTS}/d/scale")).json()
    await client.patch(f"{DEPLOYMENTS}/d", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
    assert (await client.put(f"{DEPLOYMENTS}/d/scale", json=scale)).status_code == 409


async def test_custom_resource_scale_uses_the_declared_paths(client: httpx.AsyncClient, widgets: str) -> None:
    await client.post(widgets, json={"metadata": {"name": "w"}, "spec": {"size": 1}})
    await client.patch(
        f"{widgets}/w/status", json={"status": {"size": 1, "selector": "app=w"}}, headers=MERGE
    )
    scale = (await client.get(f"{widgets}/w/scale")).json()
    assert scale["spec"] == {"replicas": 1} and scale["status"] == {"replicas": 1, "selector": "app=w"}
    await client.patch(f"{widgets}/w/scale", json={"spec": {"replicas": 4}}, headers=MERGE)
    assert (await client.get(f"{widgets}/w")).json()["spec"]["size"] == 4


async def test_custom_resource_status_writes_do_not_bump_generation(
    client: httpx.AsyncClient,
    widgets: str,
) -> None:
    await client.post(widgets, json={"metadata": {"name": "w"}, "spec": {"size": 1}})
    written = (await client.patch(f"{widgets}/w/status", json={"status": {"ok": True}}, headers=MERGE)).json()
    assert written["metadata"]["generation"] == 1 and written["status"] == {"ok": True}


async def test_scale_of_a_resource_without_scale_is_not_found(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
    assert (await client.get(f"{CONFIGMAPS}/c/scale")).status_code == 404
