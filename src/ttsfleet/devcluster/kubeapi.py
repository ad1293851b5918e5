"""A small async Kubernetes API client for the pod runner: list, watch, create, patch, delete over httpx.

Only what the runner needs, against any API that speaks Kubernetes JSON (the embedded one in practice).
Errors become `ApiError` with the HTTP status; watches resume from the last resourceVersion and start
over with a fresh list after 410 Gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ttsfleet.devcluster import retry_after

logger = logging.getLogger(__name__)
Body = dict[str, Any]

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
# How long a watch request may stay open before the client starts a new one (the server may end it first).
WATCH_TIMEOUT_S = 300
RECONNECT_DELAY_S = 0.5


class ApiError(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a resource lives: `Resource("apps/v1", "deployments")`, `Resource("v1", "pods")`."""

    api_version: str
    plural: str

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str = "") -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [root]
        if namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


DEPLOYMENTS = Resource("apps/v1", "deployments")
PODS = Resource("v1", "pods")
SECRETS = Resource("v1", "secrets")
CONFIGMAPS = Resource("v1", "configmaps")
SERVICES = Resource("v1", "services")
ENDPOINTSLICES = Resource("discovery.k8s.io/v1", "endpointslices")


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change: ADDED, MODIFIED, DELETED, or SYNCED (a fresh list replaced everything known)."""

    type: str
    object: Body
    snapshot: tuple[Body, ...] = ()


class KubeApi:
    """An httpx client on the API's base URL; use as an async context manager."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout_s: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout_s,
            trust_env=False,
            transport=retry_after.transport(tls or True),
        )

    async def __aenter__(self) -> KubeApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Body:
        response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message", response.text))
            except ValueError:
                message = response.text
            raise ApiError(response.status_code, message[:300])
        result: Body = response.json()
        return result

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Body | None:
        """One object, or None when it does not exist."""
        try:
            return await self._request("GET", resource.path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, resource: Resource, namespace: str | None = None, params: Mapping[str, str] | None = None
    ) -> Body:
        """The list object (items and metadata.resourceVersion); `params` may hold a fieldSelector."""
        return await self._request("GET", resource.path(namespace), params=dict(params or {}))

    async def create(self, resource: Resource, namespace: str | None, body: Mapping[str, Any]) -> Body:
        """Create an object."""
        return await self._request("POST", resource.path(namespace), json=body)

    async def replace(self, resource: Resource, namespace: str | None, name: str, body: Body) -> Body:
        """PUT an object."""
        return await self._request("PUT", resource.path(namespace, name), json=body)

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        subresource: str = "",
    ) -> Body:
        """A JSON merge-patch of an object or its subresource."""
        return await self._request(
            "PATCH",
            resource.path(namespace, name, subresource),
            content=json.dumps(patch),
            headers=MERGE_PATCH,
        )

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> Body | None:
        """Delete an object; None when it was already gone."""
        try:
            return await self._request("DELETE", resource.path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def delete_with(
        self, resource: Resource, namespace: str | None, name: str, options: Mapping[str, Any]
    ) -> Body | None:
        """Delete with DeleteOptions (grace period, preconditions); None when it was already gone."""
        try:
            return await self._request("DELETE", resource.path(namespace, name), json=dict(options))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def watch(
        self, resource: Resource, selector: Mapping[str, str] | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Every change of a resource in all namespaces, forever: a SYNCED snapshot first and after gaps.
        `selector` (fieldSelector / labelSelector) narrows list and watch alike."""
        resource_version = ""
        while True:
            try:
                if not resource_version:
                    listed = await self.list(resource, params=selector)
                    resource_version = listed["metadata"].get("resourceVersion", "")
                    yield WatchEvent("SYNCED", {}, tuple(listed.get("items") or ()))
                params = {
                    **(selector or {}),
                    "watch": "true",
                    "resourceVersion": resource_version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": str(WATCH_TIMEOUT_S),
                }
                timeout = httpx.Timeout(10.0, read=WATCH_TIMEOUT_S + 30)
                async with self._http.stream(
                    "GET", resource.path(), params=params, timeout=timeout
                ) as response:
                    if response.status_code == 410:
                        resource_version = ""
                        continue
                    if response.status_code >= 400:
                        raise ApiError(response.status_code, (await response.aread()).decode()[:300])
                    async for line in response.aiter_lines():
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        kind, body = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            if body.get("code") == 410:
                                resource_version = ""
                            break
                        resource_version = (body.get("metadata") or {}).get(
                            "resourceVersion", resource_version
                        )
                        if kind != "BOOKMARK":
                            yield WatchEvent(str(kind), body)
            except (httpx.TransportError, ApiError) as error:
                logger.debug("watch of %s interrupted: %s", resource.plural, error)
                await asyncio.sleep(RECONNECT_DELAY_S)
