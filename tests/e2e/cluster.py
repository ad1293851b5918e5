"""The local fleet's API as the end-to-end tests use it: apply, patch, read, and wait by watching.

Waits list the object, check the condition, then watch from the list's resourceVersion until the
condition holds or the deadline passes (STYLE.md rule 20: ready means converged, waited for by watching).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from ttsfleet.demo import condition
from ttsfleet.devcluster.fleet import FleetState

Body = dict[str, Any]
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
BACKENDS = "/apis/ttsfleet.io/v1alpha1/namespaces/{namespace}/ttsbackends"
COLLECTIONS = {
    ("v1", "Namespace"): "/api/v1/namespaces",
    ("v1", "Secret"): "/api/v1/namespaces/{namespace}/secrets",
    ("v1", "Pod"): "/api/v1/namespaces/{namespace}/pods",
    ("v1", "Service"): "/api/v1/namespaces/{namespace}/services",
    ("v1", "ConfigMap"): "/api/v1/namespaces/{namespace}/configmaps",
    ("v1", "Event"): "/api/v1/namespaces/{namespace}/events",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{namespace}/deployments",
    ("apps/v1", "ReplicaSet"): "/apis/apps/v1/namespaces/{namespace}/replicasets",
    ("discovery.k8s.io/v1", "EndpointSlice"): (
        "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
    ),
    ("ttsfleet.io/v1alpha1", "TTSBackend"): BACKENDS,
}


def collection(api_version: str, kind: str, namespace: str = "default") -> str:
    """The collection path of a kind the tests use."""
    return COLLECTIONS[(api_version, kind)].format(namespace=namespace)


def is_converged(body: Mapping[str, Any]) -> bool:
    """Ready, not progressing, status about this generation, every desired pod counted."""
    status = body.get("status") or {}
    return (
        condition(body, "Ready").get("status") == "True"
        and condition(body, "Progressing").get("status") == "False"
        and status.get("observedGeneration") == body["metadata"].get("generation")
        and status.get("replicas") == body["spec"].get("replicas")
        and status.get("updatedReplicas") == body["spec"].get("replicas")
    )


class Cluster:
    """An async client on the local fleet's API (the admin's certificate on the real control plane)."""

    def __init__(self, state: FleetState) -> None:
        self.http = state.async_client()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def apply(self, body: Mapping[str, Any]) -> Body:
        """Create the object, or merge-patch it when it exists."""
        path = collection(body["apiVersion"], body["kind"], body["metadata"].get("namespace", "default"))
        response = await self.http.post(path, json=body)
        if response.status_code == 409:
            response = await self.http.patch(
                f"{path}/{body['metadata']['name']}", content=json.dumps(body), headers=MERGE_PATCH
            )
        response.raise_for_status()
        result: Body = response.json()
        return result

    async def patch(self, path: str, patch: Mapping[str, Any]) -> Body:
        """A JSON merge patch of the object (or subresource) at `path`."""
        response = await self.http.patch(path, content=json.dumps(patch), headers=MERGE_PATCH)
        response.raise_for_status()
        result: Body = response.json()
        return result

    async def get(self, path: str) -> Body | None:
        """The object at `path`, or None."""
        response = await self.http.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: Body = response.json()
        return result

    async def items(self, path: str, **params: str) -> list[Body]:
        """The items of a list."""
        response = await self.http.get(path, params=params)
        response.raise_for_status()
        return list(response.json().get("items") or ())

    async def wait(
        self,
        path: str,
        predicate: Callable[[list[Body]], bool],
        deadline_s: float,
        what: str,
        on_change: Callable[[list[Body]], None] = lambda items: None,
        **params: str,
    ) -> list[Body]:
        """Watch the collection at `path` until `predicate(items)` holds; the items when it does."""
        try:
            async with asyncio.timeout(deadline_s):
                while True:  # a watch the server ends is started again from a fresh list
                    listed = (await self.http.get(path, params=params)).raise_for_status().json()
                    known = {item["metadata"]["uid"]: item for item in listed.get("items") or ()}
                    on_change(list(known.values()))
                    if predicate(list(known.values())):
                        return list(known.values())
                    watch = {
                        **params,
                        "watch": "true",
                        "resourceVersion": listed["metadata"]["resourceVersion"],
                    }
                    async with self.http.stream("GET", path, params=watch, timeout=None) as events:
                        async for line in events.aiter_lines():
                            if not line.strip():
                                continue
                            event = json.loads(line)
                            kind, body = event.get("type"), event.get("object") or {}
                            if kind == "ERROR":
                                break
                            if kind == "DELETED":
                                known.pop(body["metadata"]["uid"], None)
                            elif kind in ("ADDED", "MODIFIED"):
                                known[body["metadata"]["uid"]] = body
                            else:
                                continue
                            on_change(list(known.values()))
                            if predicate(list(known.values())):
                                return list(known.values())
        except TimeoutError:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}") from None

    async def wait_backend(
        self,
        namespace: str,
        name: str,
        predicate: Callable[[Body], bool],
        deadline_s: float,
        what: str,
        on_change: Callable[[Body], None] = lambda body: None,
    ) -> Body:
        """Watch one TTSBackend until `predicate(body)` holds."""

        def seen(items: list[Body]) -> None:
            for item in items:
                on_change(item)

        items = await self.wait(
            BACKENDS.format(namespace=namespace),
            lambda items: any(predicate(item) for item in items),
            deadline_s,
            what,
            on_change=seen,
            fieldSelector=f"metadata.name={name}",
        )
        return next(item for item in items if predicate(item))
