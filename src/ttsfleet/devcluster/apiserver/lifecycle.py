"""The metadata rules of writes: identity on create, generation on change, deletion with finalizers.

- create: `generateName`, uid, creationTimestamp, generation 1; status dropped where /status exists.
- update: identity fields are the server's; generation grows only when something outside metadata and
  status changed; status comes only through /status where that subresource exists.
- delete: with finalizers the object gets deletionTimestamp (and a generation bump) and stays until an
  update empties the finalizers. Pure functions: time and the resource spec come in as arguments.
"""

from __future__ import annotations

import copy
import datetime
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from ttsfleet.devcluster.apiserver import errors
from ttsfleet.devcluster.apiserver.resources import ResourceSpec
from ttsfleet.devcluster.apiserver.storage import Body

# The apiserver's generateName alphabet: no vowels (no words), no look-alike digits.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_OWNED = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "name",
    "namespace",
)
_NOT_SPEC = ("apiVersion", "kind", "metadata", "status")


def timestamp(now: datetime.datetime) -> str:
    """RFC 3339 in UTC with seconds, as Kubernetes writes times."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generated_name(prefix: str) -> str:
    """`prefix` plus five random characters, as `metadata.generateName` asks."""
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def _require_mapping(body: Any) -> Body:
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be a JSON object")
    return body


def _check_kind(spec: ResourceSpec, body: Body) -> None:
    kind = body.get("kind")
    if kind is not None and kind != spec.kind:
        raise errors.bad_request(f"the kind {kind!r} does not match the resource {spec.qualified_name!r}")


def _apply_defaults(spec: ResourceSpec, body: Body) -> None:
    # The few server-side defaults the fleet's code reads back (the rest of defaulting is not emulated).
    if spec.kind in ("Deployment", "ReplicaSet") and spec.group == "apps":
        body.setdefault("spec", {}).setdefault("replicas", 1)
    if spec.kind == "Namespace":
        body.setdefault("status", {}).setdefault("phase", "Active")


def new_object(
    spec: ResourceSpec,
    body: Any,
    url_namespace: str | None,
    now: datetime.datetime,
    is_taken: Callable[[str], bool],
) -> Body:
    """The object a create stores: identity assigned, server-owned fields reset."""
    obj = copy.deepcopy(_require_mapping(body))
    _check_kind(spec, obj)
    obj["apiVersion"], obj["kind"] = spec.api_version, spec.kind
    metadata = obj["metadata"] = dict(obj.get("metadata") or {})
    if not metadata.get("name"):
        prefix = metadata.get("generateName")
        if not prefix:
            raise errors.invalid(
                spec.qualified_name, "", "metadata.name: Required value: name or generateName is required"
            )
        name = generated_name(prefix)
        while is_taken(name):
            name = generated_name(prefix)
        metadata["name"] = name
    if spec.namespaced:
        body_namespace = metadata.get("namespace")
        if url_namespace and body_namespace and body_namespace != url_namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        metadata["namespace"] = url_namespace or body_namespace or "default"
    else:
        metadata.pop("namespace", None)
    for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "managedFields"):
        metadata.pop(key, None)
    metadata.update(uid=str(uuid.uuid4()), creationTimestamp=timestamp(now), generation=1)
    if spec.has_status:
        obj.pop("status", None)
    _apply_defaults(spec, obj)
    return obj


def spec_part(body: Body) -> Body:
    """Everything whose change bumps the generation."""
    return {key: value for key, value in body.items() if key not in _NOT_SPEC}


def updated_object(spec: ResourceSpec, old: Body, body: Any, *, subresource: str | None) -> Body:
    """The object an update (PUT or a patch's result) stores, given the stored one."""
    new = copy.deepcopy(_require_mapping(body))
    _check_kind(spec, new)
    if subresource == "status":
        # /status writes change status only; metadata and spec stay as stored.
        result = dict(old)
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
        return result
    result = dict(new, apiVersion=old["apiVersion"], kind=old["kind"])
    if spec.has_status:
        result.pop("status", None)
        if "status" in old:
            result["status"] = old["status"]
    metadata = dict(new.get("metadata") or {})
    for key in _SERVER_OWNED:
        metadata.pop(key, None)
        if key in old["metadata"]:
            metadata[key] = old["metadata"][key]
    if "generation" in metadata and spec_part(result) != spec_part(old):
        metadata["generation"] += 1
    result["metadata"] = metadata
    return result


def is_unchanged(old: Body, new: Body) -> bool:
    """A write that changes nothing keeps its resourceVersion and sends no event."""

    def comparable(body: Body) -> Body:
        return dict(body, metadata={k: v for k, v in body["metadata"].items() if k != "resourceVersion"})

    return comparable(old) == comparable(new)


def check_resource_version(spec: ResourceSpec, old: Body, requested: Any) -> None:
    """409 when a write names a resourceVersion other than the stored one."""
    if requested is not None and requested != "" and str(requested) != old["metadata"]["resourceVersion"]:
        raise errors.conflict(
            spec.qualified_name,
            old["metadata"]["name"],
            "the object has been modified; please apply your changes to the latest version and try again",
        )


def check_preconditions(spec: ResourceSpec, old: Body, options: Any) -> None:
    """409 when DeleteOptions preconditions (uid, resourceVersion) do not hold."""
    preconditions = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
    uid = preconditions.get("uid")
    if uid is not None and uid != old["metadata"]["uid"]:
        raise errors.conflict(spec.qualified_name, old["metadata"]["name"], "Precondition failed: UID")
    check_resource_version(spec, old, preconditions.get("resourceVersion"))


def marked_for_deletion(old: Body, now: datetime.datetime) -> Body:
    """A finalized object's state after a delete request: it waits for its finalizers."""
    metadata = dict(old["metadata"], deletionTimestamp=timestamp(now), deletionGracePeriodSeconds=0)
    if "generation" in metadata:
        metadata["generation"] += 1
    return dict(old, metadata=metadata)


def is_deleting(body: Body) -> bool:
    """The object has been asked to go."""
    return bool(body["metadata"].get("deletionTimestamp"))


def is_releasable(body: Body) -> bool:
    """Deletion was requested and no finalizer holds the object any more."""
    return is_deleting(body) and not body["metadata"].get("finalizers")
