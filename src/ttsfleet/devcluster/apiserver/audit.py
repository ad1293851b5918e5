"""An in-memory audit log of API requests, for RBAC audits and "API calls per reconcile" benchmarks.

Each request becomes one record with its Kubernetes verb (get, list, watch, create, update, patch,
delete, deletecollection), group, resource, subresource, namespace, name and user agent; requests
outside the resource API (discovery, /version) carry their path and an empty resource. The log keeps
the newest `max_records` entries so a long-running local fleet does not grow without bound.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass
from typing import Any

import kmock

_VERBS_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One request, as the apiserver's audit log would name it."""

    verb: str
    api_group: str
    api_version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    user_agent: str
    path: str

    @property
    def is_resource_request(self) -> bool:
        """False for discovery and other non-resource URLs."""
        return bool(self.resource)

    def as_json(self) -> dict[str, Any]:
        """camelCase keys, as the HTTP endpoint serves them."""
        raw = asdict(self)
        return {
            "verb": raw["verb"],
            "apiGroup": raw["api_group"],
            "apiVersion": raw["api_version"],
            "resource": raw["resource"],
            "subresource": raw["subresource"],
            "namespace": raw["namespace"],
            "name": raw["name"],
            "userAgent": raw["user_agent"],
            "path": raw["path"],
        }


def verb_of(request: kmock.Request) -> str:
    """The Kubernetes verb of a request (RBAC's vocabulary, not HTTP's)."""
    method = str(request.method.value).upper()
    if method == "GET":
        if request.resource is None or not request.resource.plural:
            return "get"  # discovery and other non-resource URLs
        if request.params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if request.name else "list"
    if method == "DELETE":
        return "delete" if request.name else "deletecollection"
    return _VERBS_BY_METHOD.get(method, method.lower())


def record_of(request: kmock.Request) -> AuditRecord:
    """The audit record of a parsed kmock request."""
    resource = request.resource
    return AuditRecord(
        verb=verb_of(request),
        api_group=(resource.group or "") if resource is not None else "",
        api_version=(resource.version or "") if resource is not None else "",
        resource=(resource.plural or "") if resource is not None else "",
        subresource=request.subresource or "",
        namespace=request.namespace or "",
        name=request.name or "",
        user_agent=request.headers.get("User-Agent", ""),
        path=request.url.path,
    )


class AuditLog:
    """The records of requests since start or the last reset, oldest first."""

    def __init__(self, max_records: int = 100_000) -> None:
        self._records: collections.deque[AuditRecord] = collections.deque(maxlen=max_records)

    def record(self, request: kmock.Request) -> AuditRecord:
        """Append a request's record."""
        entry = record_of(request)
        self._records.append(entry)
        return entry

    def records(self, *, resource_only: bool = False) -> list[AuditRecord]:
        """A copy of the records; `resource_only` skips discovery and other non-resource URLs."""
        return [r for r in self._records if r.is_resource_request or not resource_only]

    def reset(self) -> None:
        """Forget everything recorded so far (e.g. before the reconcile a benchmark counts)."""
        self._records.clear()

    def as_json(self) -> dict[str, Any]:
        """The log as `GET /_audit` serves it."""
        return {"items": [entry.as_json() for entry in self._records]}
