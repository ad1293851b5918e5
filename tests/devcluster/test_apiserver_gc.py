"""Garbage collection of dependents by ownerReferences."""

from __future__ import annotations

from typing import Any

import httpx

from tests.devcluster.conftest import CONFIGMAPS, DEPLOYMENTS, deployment
from ttsfleet.devcluster.apiserver import ApiServer


def owned_by(*owners: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": o["apiVersion"],
            "kind": o["kind"],
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
            "controller": index == 0,
        }
        for index, o in enumerate(owners)
    ]


async def test_deleting_an_owner_deletes_its_dependents_in_cascade(
    client: httpx.AsyncClient,
    apiserver: ApiServer,
) -> None:
    owner = (await client.post(DEPLOYMENTS, json=deployment("d"))).json()
    child = (
        await client.post(
            CONFIGMAPS, json={"metadata": {"name": "child", "ownerReferences": owned_by(owner)}}
        )
    ).json()
    await client.post(
        CONFIGMAPS, json={"metadata": {"name": "grandchild", "ownerReferences": owned_by(child)}}
    )
    await client.post(CONFIGMAPS, json={"metadata": {"name": "bystander"}})
    await client.delete(f"{DEPLOYMENTS}/d")
    assert [o["metadata"]["name"] for o in apiserver.list_objects("v1/configmaps", "default")] == [
        "bystander"
    ]


async def test_a_dependent_with_a_live_owner_stays(client: httpx.AsyncClient, apiserver: ApiServer) -> None:
    first = (await client.post(DEPLOYMENTS, json=deployment("a"))).json()
    second = (await client.post(DEPLOYMENTS, json=deployment("b"))).json()
    await client.post(
        CONFIGMAPS, json={"metadata": {"name": "shared", "ownerReferences": owned_by(first, second)}}
    )
    await client.delete(f"{DEPLOYMENTS}/a")
    assert apiserver.get_object("v1/configmaps", "default", "shared") is not None
    await client.delete(f"{DEPLOYMENTS}/b")
    assert apiserver.get_object("v1/configmaps", "default", "shared") is None


async def test_a_dependent_with_finalizers_is_only_marked(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    owner = (await client.post(DEPLOYMENTS, json=deployment("d"))).json()
    await client.post(
        CONFIGMAPS,
        json={"metadata": {"name": "held", "finalizers": ["x/y"], "ownerReferences": owned_by(owner)}},
    )
    await client.delete(f"{DEPLOYMENTS}/d")
    held = apiserver.get_object("v1/configmaps", "default", "held")
    assert held is not None and held["metadata"]["deletionTimestamp"]


async def test_orphan_propagation_keeps_dependents_without_the_reference(
    client: httpx.AsyncClient,
    apiserver: ApiServer,
) -> None:
    owner = (await client.post(DEPLOYMENTS, json=deployment("d"))).json()
    await client.post(CONFIGMAPS, json={"metadata": {"name": "child", "ownerReferences": owned_by(owner)}})
    await client.request("DELETE", f"{DEPLOYMENTS}/d", json={"propagationPolicy": "Orphan"})
    child = apiserver.get_object("v1/configmaps", "default", "child")
    assert child is not None and "ownerReferences" not in child["metadata"]
