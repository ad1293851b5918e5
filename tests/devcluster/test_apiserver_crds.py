"""A CRD that is POSTed becomes served and discoverable; deleting it withdraws the resource."""

from __future__ import annotations

import httpx

from tests.devcluster.conftest import CRD_PATH, WIDGETS, widget_crd


async def test_crd_is_served_and_discoverable_after_post(client: httpx.AsyncClient) -> None:
    assert (await client.get(WIDGETS)).status_code == 404
    created = (await client.post(CRD_PATH, json=widget_crd())).json()
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}

    groups = (await client.get("/apis")).json()["groups"]
    assert "example.dev" in [group["name"] for group in groups]
    resources = (await client.get("/apis/example.dev/v1")).json()["resources"]
    by_name = {resource["name"]: resource for resource in resources}
    assert set(by_name) == {"widgets", "widgets/status", "widgets/scale"}
    assert by_name["widgets"]["kind"] == "Widget" and by_name["widgets"]["shortNames"] == ["wd"]
    assert by_name["widgets"]["namespaced"] is True

    assert (await client.post(WIDGETS, json={"metadata": {"name": "w"}, "spec": {}})).status_code == 201
    listed = (await client.get(WIDGETS)).json()
    assert listed["kind"] == "WidgetList" and [i["metadata"]["name"] for i in listed["items"]] == ["w"]


async def test_crd_deletion_withdraws_the_resource_and_its_objects(client: httpx.AsyncClient) -> None:
    await client.post(CRD_PATH, json=widget_crd())
    await client.post(WIDGETS, json={"metadata": {"name": "w"}})
    assert (await client.delete(f"{CRD_PATH}/widgets.example.dev")).status_code == 200
    assert (await client.get(WIDGETS)).status_code == 404
    assert (await client.get("/apis/example.dev/v1")).status_code == 404


async def test_crd_with_a_mismatched_name_is_invalid(client: httpx.AsyncClient) -> None:
    body = widget_crd()
    body["metadata"]["name"] = "gadgets.example.dev"
    assert (await client.post(CRD_PATH, json=body)).status_code == 422


async def test_core_discovery_names_the_group_version_v1(client: httpx.AsyncClient) -> None:
    core = (await client.get("/api/v1")).json()
    assert core["groupVersion"] == "v1"
    names = {resource["name"] for resource in core["resources"]}
    assert {"namespaces", "secrets", "configmaps", "services", "pods", "events", "serviceaccounts"} <= names
    apps = {r["name"]: r for r in (await client.get("/apis/apps/v1")).json()["resources"]}
    assert apps["deployments/scale"]["kind"] == "Scale"
