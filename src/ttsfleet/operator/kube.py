"""The only module that talks to the Kubernetes API: a small async client over httpx.

Why httpx and not the `kubernetes` package: the operator is asyncio end to end (kopf), httpx is async
natively (the sync `kubernetes` client would need a thread per call), it is already the operator's
probe client, and the handful of verbs used here (get, list, create, merge/JSON patch, delete, status
patch) need no generated models. Credentials come from kopf's login (`kopf.ConnectionInfo`), so the
operator and kopf's own watches always use the same identity. Errors leave as `errors.ApiError`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kopf

import ttsfleet
from ttsfleet.operator import errors, rendering

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
USER_AGENT = f"ttsfleet-operator/{ttsfleet.__version__}"
Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource type's URL parts."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """`group/version`, or `version` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path of the collection, an object, or an object's subresource."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


def managed_resource(api_version: str, kind: str) -> Resource:
    """The resource of a kind the operator renders: its plural is the lower-cased kind with an
    English plural ending, which is what every managed kind's CRD or built-in type uses (client-go
    guesses the same way); a kind that breaks the rule would fail its first request, loudly."""
    group, _, version = api_version.rpartition("/")
    lowered = kind.lower()
    if lowered.endswith("y"):
        plural = lowered[:-1] + "ies"
    elif lowered.endswith("s"):
        plural = lowered + "es"
    else:
        plural = lowered + "s"
    return Resource(group, version, plural)


# Every kind the operator renders, by (apiVersion, kind) as the manifests name them.
BY_KIND: dict[tuple[str, str], Resource] = {
    (api_version, kind): managed_resource(api_version, kind) for api_version, kind in rendering.MANAGED_KINDS
}
TTSBACKENDS = Resource("ttsfleet.io", "v1alpha1", "ttsbackends")
SECRETS = Resource("", "v1", "secrets")
PODS = Resource("", "v1", "pods")
DEPLOYMENTS = BY_KIND[("apps/v1", "Deployment")]
HPAS = BY_KIND[("autoscaling/v2", "HorizontalPodAutoscaler")]


def resource_of(body: Mapping[str, Any]) -> Resource:
    """The resource of a manifest; KeyError for a kind the operator does not manage."""
    return BY_KIND[(str(body["apiVersion"]), str(body["kind"]))]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-phase timeouts of API requests, in seconds."""

    connect_s: float = 5.0
    read_s: float = 30.0
    write_s: float = 30.0
    pool_s: float = 5.0


# Requests in flight at once. Hundreds of backends reconciling together would otherwise queue hundreds
# of requests inside httpcore's pool, whose bookkeeping is quadratic in the queue (measured: 400 new
# backends took 66 s, nearly all of it there) and whose pool timeout then fails requests that merely
# waited. A semaphore queues them in order at no cost and spares the API server a burst, as client-go's
# QPS limit does.
DEFAULT_MAX_IN_FLIGHT = 16


class KubeClient:
    """Verbs on the API for one identity; close with `aclose()`."""

    def __init__(self, client: httpx.AsyncClient, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self._client = client
        self._in_flight = asyncio.Semaphore(max_in_flight)

    @classmethod
    def from_connection(
        cls,
        info: kopf.ConnectionInfo,
        timeouts: Timeouts = Timeouts(),
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> KubeClient:
        """A client for the endpoint and credentials kopf logged in with."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        auth: httpx.Auth | None = None
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        elif info.username and info.password:
            auth = httpx.BasicAuth(info.username, info.password)
        return cls(
            httpx.AsyncClient(
                base_url=info.server,
                headers=headers,
                auth=auth,
                verify=_ssl_context(info),
                timeout=httpx.Timeout(
                    connect=timeouts.connect_s,
                    read=timeouts.read_s,
                    write=timeouts.write_s,
                    pool=timeouts.pool_s,
                ),
                trust_env=info.trust_env,
                proxy=info.proxy_url,
                # One connection per request in flight: nothing ever waits for the pool.
                limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
            ),
            max_in_flight,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Body:
        """One object; `errors.ApiNotFound` when absent."""
        return await self._request("GET", resource.path(namespace, name))

    async def get_or_none(self, resource: Resource, namespace: str | None, name: str) -> Body | None:
        """One object, or None when it (or its resource type) does not exist."""
        try:
            return await self.get(resource, namespace, name)
        except errors.ApiNotFound:
            return None

    async def list(
        self, resource: Resource, namespace: str | None, *, label_selector: str = "", field_selector: str = ""
    ) -> list[Body]:
        """Objects of a resource in a namespace, filtered by label and field selectors."""
        params = {"labelSelector": label_selector} if label_selector else {}
        if field_selector:
            params["fieldSelector"] = field_selector
        listing = await self._request("GET", resource.path(namespace), params=params)
        return list(listing.get("items") or [])

    async def create(self, resource: Resource, namespace: str | None, body: Body) -> Body:
        """Create an object."""
        return await self._request("POST", resource.path(namespace), body=body)

    async def merge_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Body,
        *,
        subresource: str | None = None,
    ) -> Body:
        """RFC 7386 merge patch (lists replaced, `None` removes a key)."""
        path = resource.path(namespace, name, subresource)
        return await self._request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    async def apply(
        self, resource: Resource, namespace: str | None, name: str, body: Body, *, field_manager: str
    ) -> Body:
        """Server-side apply under `field_manager`, forced: the body's fields become this manager's.

        Fields the manager applied before and leaves out now are removed (unless another manager
        owns them too); fields other managers set and the body does not mention are kept.
        """
        path = resource.path(namespace, name)
        params = {"fieldManager": field_manager, "force": "true"}
        return await self._request("PATCH", path, params=params, body=body, content_type=APPLY_PATCH)

    async def json_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        operations: Sequence[Body],
        *,
        subresource: str | None = None,
    ) -> Body:
        """RFC 6902 JSON patch (use a `test` op for optimistic concurrency)."""
        path = resource.path(namespace, name, subresource)
        return await self._request("PATCH", path, body=list(operations), content_type=JSON_PATCH)

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> None:
        """Delete an object in the background (dependents follow by garbage collection); absent is fine."""
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            await self._request("DELETE", resource.path(namespace, name), body=options)
        except errors.ApiNotFound:
            return

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Body:
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content is not None else {}
        try:
            async with self._in_flight:
                response = await self._client.request(
                    method, path, params=params, content=content, headers=headers
                )
        except httpx.TransportError as exc:
            raise errors.ApiUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            decoded: Body = response.json() if response.content else {}
            return decoded
        raise _error_of(method, path, response)


def _error_of(method: str, path: str, response: httpx.Response) -> errors.ApiError:
    reason, message = "", response.text
    try:
        status_body = response.json()
    except ValueError:
        status_body = None
    if isinstance(status_body, dict):
        reason = str(status_body.get("reason") or "")
        message = str(status_body.get("message") or message)
    return errors.for_status(
        response.status_code,
        f"{method} {path}: {response.status_code} {message}",
        reason=reason,
        retry_after_s=errors.parse_retry_after(response.headers.get("Retry-After")),
    )


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if not info.server.startswith("https"):
        return True  # plain http (the embedded API): nothing to verify
    if info.insecure:
        return False
    context = ssl.create_default_context()
    if info.ca_path:
        context.load_verify_locations(cafile=str(Path(_text(info.ca_path))))
    elif info.ca_data:
        context.load_verify_locations(cadata=_text(info.ca_data))
    certificate = _as_file(info.certificate_path, info.certificate_data)
    private_key = _as_file(info.private_key_path, info.private_key_data)
    if certificate:
        context.load_cert_chain(certificate, private_key)
    return context


def _text(value: str | bytes | Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_file(path: Any, data: str | bytes | None) -> str | None:
    # ssl loads client certificates only from files; inline kubeconfig data goes to a private temp file.
    if path:
        return _text(path)
    if not data:
        return None
    raw = data.encode() if isinstance(data, str) else data
    with tempfile.NamedTemporaryFile(prefix="ttsfleet-kube-", delete=False) as handle:
        handle.write(raw)
        return handle.name


def connection(api_server: str | None, kubeconfig: Path | None, **login: Any) -> kopf.ConnectionInfo | None:
    """Where and as whom the operator talks to the API: an embedded API's URL (no credentials), a given
    kubeconfig, else kopf's own search (in-cluster, then $KUBECONFIG); `login` is kopf's login kwargs."""
    if api_server:
        return kopf.ConnectionInfo(server=api_server)
    if kubeconfig:
        return connection_from_kubeconfig(kubeconfig)
    found: kopf.ConnectionInfo | None = kopf.login_via_client(**login)
    return found


def connection_from_kubeconfig(path: Path) -> kopf.ConnectionInfo:
    """Credentials from the current context of one kubeconfig file (not `$KUBECONFIG`'s, which the
    `kubernetes` package reads once at import): what a local operator given `--kubeconfig` logs in with."""
    import kubernetes.client
    import kubernetes.config

    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(path), client_configuration=configuration
    )
    # Newer clients keep the bearer token under BearerToken, older ones under authorization.
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )
