"""Parsing Kubernetes API paths and building kmock requests from aiohttp ones.

kmock 0.8's own parser fails on the `namespaces` resource itself (`/api/v1/namespaces` raises,
`/api/v1/namespaces/default` loses the name), so the emulator parses paths here and hands kmock a
`kmock.Request` with the resource, namespace, name, subresource and action filled in correctly.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp.web
import kmock

from ttsfleet.devcluster.apiserver import errors, protobuf

# Subresources of a Namespace object, as opposed to `/namespaces/{ns}/{plural}` collections.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True, slots=True)
class ApiPath:
    """The Kubernetes parts of a path; `group` is None outside /api and /apis."""

    group: str | None = None
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @property
    def is_resource(self) -> bool:
        """A path to a collection, an object or a subresource (not discovery)."""
        return self.plural is not None and self.version is not None


def parse(path: str) -> ApiPath:
    """Split `/api/v1/...` or `/apis/{group}/{version}/...` into its parts."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"]:
        group, rest = "", parts[1:]
    elif parts[:1] == ["apis"] and len(parts) >= 2:
        group, rest = parts[1], parts[2:]
    else:
        return ApiPath()
    if not rest:
        return ApiPath(group=group)
    version, rest = rest[0], rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) >= 2 else None
    subresource = "/".join(rest[2:]) or None
    return ApiPath(group, version, plural, namespace, name, subresource)


def is_watch(query: dict[str, str]) -> bool:
    """`?watch=true` (or `1`), as clients spell it."""
    return query.get("watch", "").lower() in ("true", "1")


def action_of(api_path: ApiPath, method: str, query: dict[str, str]) -> kmock.action | None:
    """kmock's action for a resource request (PUT and collection deletes have none in kmock)."""
    if not api_path.is_resource:
        return None
    if method == "GET":
        if is_watch(query):
            return kmock.action.WATCH
        return kmock.action.FETCH if api_path.name else kmock.action.LIST
    if api_path.name is None:
        return kmock.action.CREATE if method == "POST" else None
    return {"PATCH": kmock.action.UPDATE, "DELETE": kmock.action.DELETE}.get(method)


async def build_request(raw: aiohttp.web.BaseRequest, request_id: int) -> kmock.Request:
    """A kmock request with the body read and the Kubernetes fields parsed by `parse`."""
    body = await raw.read()
    text = body.decode("utf-8", errors="replace")
    try:
        data = await raw.json() if body else None
    except ValueError:
        data = None  # YAML (server-side apply) or garbage: handlers read `text` themselves
    if body and raw.content_type == protobuf.MEDIA_TYPE:
        try:
            data = protobuf.decode(body)
        except protobuf.ProtobufError as exc:
            raise errors.unsupported_media_type(f"{raw.content_type} ({exc})") from exc
    query = dict(raw.query)
    api_path = parse(raw.path)
    resource = (
        kmock.resource(group=api_path.group, version=api_path.version, plural=api_path.plural)
        if api_path.group is not None
        else None
    )
    return kmock.Request(
        id=request_id,
        raw_request=raw,
        url=raw.url,
        method=raw.method,
        params=query,
        headers=dict(raw.headers),
        cookies=dict(raw.cookies),
        data=data,
        body=body,
        text=text,
        action=action_of(api_path, raw.method, query),
        resource=resource,
        namespace=api_path.namespace,
        name=api_path.name,
        subresource=api_path.subresource,
    )
