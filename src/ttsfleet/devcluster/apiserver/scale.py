"""The /scale subresource: an autoscaling/v1 Scale view of a resource's replica fields.

Works for any resource whose spec declares a `ScaleSpec` (Deployments, ReplicaSets, custom resources
with `subresources.scale`). Only `spec.replicas` of a written Scale is taken; the rest is derived.
Pure functions.
"""

from __future__ import annotations

import copy
from typing import Any

from ttsfleet.devcluster.apiserver import errors, selectors
from ttsfleet.devcluster.apiserver.resources import ResourceSpec, ScaleSpec
from ttsfleet.devcluster.apiserver.storage import Body


def _parts(path: str) -> list[str]:
    return [part for part in path.strip().lstrip(".").split(".") if part]


def read_path(body: Body, path: str) -> Any:
    """The value at a `.a.b.c` path, or None where any step is missing."""
    value: Any = body
    for part in _parts(path):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def write_path(body: Body, path: str, value: Any) -> Body:
    """A copy of `body` with `value` at a `.a.b.c` path, creating the steps."""
    result = copy.deepcopy(body)
    node = result
    *steps, last = _parts(path)
    for part in steps:
        node = node.setdefault(part, {})
    node[last] = value
    return result


def _scale_spec(spec: ResourceSpec) -> ScaleSpec:
    if spec.scale is None:
        raise errors.resource_not_found(f"{spec.qualified_name}/scale")
    return spec.scale


def scale_of(spec: ResourceSpec, body: Body) -> Body:
    """The Scale object for a stored object."""
    scale_spec = _scale_spec(spec)
    metadata = body["metadata"]
    status: Body = {"replicas": read_path(body, scale_spec.status_replicas_path) or 0}
    if scale_spec.label_selector_path is not None:
        selector = read_path(body, scale_spec.label_selector_path)
        if isinstance(selector, dict):
            selector = selectors.selector_string(selector)
        if selector:
            status["selector"] = selector
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            key: metadata[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in metadata
        },
        "spec": {"replicas": read_path(body, scale_spec.spec_replicas_path) or 0},
        "status": status,
    }


def with_replicas(spec: ResourceSpec, body: Body, scale: Any) -> Body:
    """The object after a Scale write: the desired replicas go to the spec path."""
    scale_spec = _scale_spec(spec)
    if not isinstance(scale, dict):
        raise errors.bad_request("the body must be a Scale object")
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid(
            "Scale",
            body["metadata"]["name"],
            f"spec.replicas: Invalid value: {replicas!r}: must be a non-negative integer",
        )
    return write_path(body, scale_spec.spec_replicas_path, replicas)
