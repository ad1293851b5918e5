"""Applying rendered children: server-side apply what is missing or changed, delete what is no longer wanted.

"Changed" is judged by a hash of the rendered manifest kept in the child's `ttsfleet.io/applied-hash`
annotation, never by comparing with the live object: the API server defaults many fields, so a
field-by-field comparison would see a difference on every reconcile and roll pods on each operator
restart. Children are written with server-side apply under one field manager (`FIELD_MANAGER`), forced
on the fields the operator renders: a field the rendering stops producing (an annotation, a
ServiceMonitor label, tolerations) is removed by the API server, and fields other controllers set
(a mesh's annotations, an HPA's replicas) are left alone. When an HPA takes over `replicas`, the
operator first hands the field over to a second manager (`HANDOVER_MANAGER`) so that dropping it from
the operator's apply does not reset the Deployment to one replica.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ttsfleet.operator import errors, kube, rendering

APPLIED_HASH_ANNOTATION = "ttsfleet.io/applied-hash"
FIELD_MANAGER = "ttsfleet-operator"
HANDOVER_MANAGER = "ttsfleet-operator-handover"

# Kinds from add-ons a cluster may lack (the Prometheus Operator) or the chart may not grant
# (`rbac.serviceMonitors=false`): a 404 or 403 on them skips that child and the rest of the backend
# reconciles; the skip is reported on the Degraded condition instead of failing the reconcile.
OPTIONAL_KINDS: frozenset[tuple[str, str]] = frozenset({("monitoring.coreos.com/v1", "ServiceMonitor")})


class Outcome(enum.StrEnum):
    """What applying one child did."""

    CREATED = "created"
    PATCHED = "patched"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Applied:
    """One child after applying: what happened and the object as the API returned it (None if deleted).

    `problem` says why a SKIPPED optional child could not be written (for the status and an Event).
    """

    kind: str
    name: str
    outcome: Outcome
    body: dict[str, Any] | None
    problem: str | None = None


def is_optional(manifest: Mapping[str, Any]) -> bool:
    """The manifest is of a kind the cluster may lack or the operator may not be granted."""
    return (str(manifest["apiVersion"]), str(manifest["kind"])) in OPTIONAL_KINDS


def unavailable_reason(error: errors.ApiError) -> str:
    """Why an optional kind cannot be written, in words an operator of the cluster acts on."""
    if isinstance(error, errors.ApiNotFound):
        return "its CustomResourceDefinition is not installed (404)"
    return "the operator's RBAC does not grant it (403; see the chart's rbac values)"


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """A stable hash of a rendered manifest (key order does not matter)."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def stamped(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with its own hash in the applied-hash annotation."""
    body: dict[str, Any] = json.loads(json.dumps(manifest))
    annotations = body["metadata"].setdefault("annotations", {})
    annotations[APPLIED_HASH_ANNOTATION] = manifest_hash(manifest)
    return body


def applied_hash(body: Mapping[str, Any]) -> str | None:
    """The applied-hash annotation of a live object."""
    return ((body.get("metadata") or {}).get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """The live child was applied from another rendering (or by hand) than `desired`."""
    return applied_hash(live) != applied_hash(desired)


def owns_replicas(live: Mapping[str, Any], manager: str = FIELD_MANAGER) -> bool:
    """`manager`'s apply owns the live object's spec.replicas (per its managedFields)."""
    for entry in (live.get("metadata") or {}).get("managedFields") or ():
        fields = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and "f:replicas" in fields:
            return True
    return False


def replicas_handover(desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The apply that keeps a Deployment's replicas when the operator stops rendering them, or None."""
    if desired["kind"] != "Deployment" or "replicas" in desired.get("spec", {}) or not owns_replicas(live):
        return None
    replicas = (live.get("spec") or {}).get("replicas")
    if replicas is None:
        return None
    metadata = desired["metadata"]
    return {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
        "spec": {"replicas": replicas},
    }


def is_controlled_by(body: Mapping[str, Any], owner_uid: str) -> bool:
    """The object's controller ownerReference names `owner_uid`."""
    refs = (body.get("metadata") or {}).get("ownerReferences") or ()
    return any(ref.get("controller") and ref.get("uid") == owner_uid for ref in refs)


async def apply_child(client: kube.KubeClient, manifest: Mapping[str, Any]) -> Applied:
    """Create the child, patch it if its rendered form changed, or leave it alone.

    An optional kind the API does not serve (404) or lets the operator write (403) is SKIPPED.
    """
    try:
        return await _apply_child(client, manifest)
    except (errors.ApiNotFound, errors.ApiForbidden) as exc:
        if not is_optional(manifest):
            raise
        kind, name = str(manifest["kind"]), str(manifest["metadata"]["name"])
        problem = f"{kind} {name} not written: {unavailable_reason(exc)}"
        return Applied(kind, name, Outcome.SKIPPED, None, problem)


async def _apply_child(client: kube.KubeClient, manifest: Mapping[str, Any]) -> Applied:
    desired = stamped(manifest)
    resource = kube.resource_of(desired)
    namespace, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    live = await client.get_or_none(resource, namespace, name)
    if live is not None and not needs_apply(desired, live):
        return Applied(str(desired["kind"]), name, Outcome.UNCHANGED, live)
    handover = replicas_handover(desired, live) if live is not None else None
    if handover is not None:
        await client.apply(resource, namespace, name, handover, field_manager=HANDOVER_MANAGER)
    applied = await client.apply(resource, namespace, name, desired, field_manager=FIELD_MANAGER)
    outcome = Outcome.CREATED if live is None else Outcome.PATCHED
    return Applied(str(desired["kind"]), name, outcome, applied)


def child_names(namespace: str, backend_name: str) -> dict[tuple[str, str], str]:
    """Where each managed kind's child of a backend lives (the ConfigMap has its own suffix)."""
    return {
        (api_version, kind): (
            rendering.meta.config_map_name(backend_name) if kind == "ConfigMap" else backend_name
        )
        for api_version, kind in rendering.MANAGED_KINDS
    }


async def prune_children(
    client: kube.KubeClient,
    namespace: str,
    backend_name: str,
    owner_uid: str,
    rendered: Iterable[Mapping[str, Any]],
) -> list[Applied]:
    """Delete this backend's children of managed kinds that rendering no longer returns."""
    wanted = {(str(body["apiVersion"]), str(body["kind"])) for body in rendered}
    deleted = []
    for kind_key, name in child_names(namespace, backend_name).items():
        if kind_key in wanted:
            continue
        resource = kube.BY_KIND[kind_key]
        try:
            live = await client.get_or_none(resource, namespace, name)
        except errors.ApiForbidden:
            if kind_key not in OPTIONAL_KINDS:
                raise
            continue  # an optional kind the operator may not read: it cannot have made one either
        # Only what we control: a same-named object someone else made is not ours to delete.
        if live is not None and is_controlled_by(live, owner_uid):
            await client.delete(resource, namespace, name)
            deleted.append(Applied(kind_key[1], name, Outcome.DELETED, None))
    return deleted
