"""Discovery documents (legacy, unaggregated) built from the resource table.

Served at `/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}` and `/version`. The core
group says `groupVersion: "v1"`; subresources appear as `plural/status` and `plural/scale` (kind Scale,
autoscaling/v1). kubectl asks for aggregated discovery first and falls back to these. Pure functions.
"""

from __future__ import annotations

from typing import Any

from ttsfleet.devcluster.apiserver.resources import ResourceRegistry, ResourceSpec

Document = dict[str, Any]

SERVER_VERSION: Document = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-ttsfleet-devcluster",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _resource_entries(spec: ResourceSpec) -> list[Document]:
    main: Document = {
        "name": spec.plural,
        "singularName": spec.singular,
        "namespaced": spec.namespaced,
        "kind": spec.kind,
        "verbs": list(spec.verbs),
    }
    if spec.short_names:
        main["shortNames"] = list(spec.short_names)
    if spec.categories:
        main["categories"] = list(spec.categories)
    entries = [main]
    if spec.has_status:
        entries.append(
            {
                "name": f"{spec.plural}/status",
                "singularName": "",
                "namespaced": spec.namespaced,
                "kind": spec.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if spec.scale is not None:
        entries.append(
            {
                "name": f"{spec.plural}/scale",
                "singularName": "",
                "namespaced": spec.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries


def resource_list(registry: ResourceRegistry, group: str, version: str) -> Document | None:
    """`/api/v1` or `/apis/{group}/{version}`; None when nothing is served there."""
    specs = [spec for spec in registry if spec.group == group and spec.version == version]
    if not specs and group:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for spec in specs for entry in _resource_entries(spec)],
    }


def _versions(registry: ResourceRegistry, group: str) -> list[str]:
    # The storage version first: clients take the first one as preferred.
    ranked = sorted({(not spec.storage, spec.version) for spec in registry if spec.group == group})
    seen: list[str] = []
    for _, version in ranked:
        if version not in seen:
            seen.append(version)
    return seen


def api_group(registry: ResourceRegistry, group: str) -> Document | None:
    """`/apis/{group}`; None when the group is not served."""
    versions = _versions(registry, group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list(registry: ResourceRegistry) -> Document:
    """`/apis`: every non-core group."""
    groups = sorted({spec.group for spec in registry if spec.group})
    documents = [api_group(registry, group) for group in groups]
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {k: v for k, v in doc.items() if k not in ("kind", "apiVersion")}
            for doc in documents
            if doc is not None
        ],
    }


def api_versions(server_address: str) -> Document:
    """`/api`: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def root_paths(registry: ResourceRegistry) -> Document:
    """`/`: the served paths."""
    paths = {"/api", "/api/v1", "/apis", "/version", "/_audit"}
    for spec in registry:
        if spec.group:
            paths.update({f"/apis/{spec.group}", f"/apis/{spec.group}/{spec.version}"})
    return {"paths": sorted(paths)}
