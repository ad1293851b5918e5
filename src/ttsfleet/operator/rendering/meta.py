"""What every child of a TTSBackend carries: names, `app.kubernetes.io/*` labels, a controller owner.

Selectors use only the labels that never change for a backend (name, instance, component); version
and the rest may change, so they label objects but never select them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ttsfleet.operator import api

APP_NAME = "ttsfleet"
COMPONENT = "gateway"
MANAGED_BY = "ttsfleet-operator"
CONFIG_HASH_ANNOTATION = "ttsfleet.io/config-hash"
SECRET_HASH_ANNOTATION = "ttsfleet.io/secret-hash"
# The label on the Secrets the operator watches.
WATCH_LABEL = "ttsfleet.io/watch"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_MAX_LABEL_VALUE = 63


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """The TTSBackend that owns a child; rendered as a controller ownerReference."""

    name: str
    uid: str
    api_version: str = api.API_VERSION
    kind: str = api.KIND

    @classmethod
    def of(cls, backend: api.TTSBackend) -> OwnerRef:
        """The owner reference for `backend`; it must have been read from the API (it needs a uid)."""
        if not backend.metadata.uid:
            raise ValueError(f"{api.KIND} {backend.metadata.name} has no uid: read it from the API first")
        return cls(name=backend.metadata.name, uid=backend.metadata.uid)

    def to_reference(self) -> dict[str, Any]:
        """The `metadata.ownerReferences[]` entry: controller, and blocking foreground deletion."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def image_version(image: str) -> str:
    """A label-safe version from an image reference: its tag, else a digest prefix, else `latest`."""
    reference, _, digest = image.partition("@")
    last_part = reference.rsplit("/", 1)[-1]
    tag = last_part.partition(":")[2]
    if not tag and digest:
        tag = digest.partition(":")[2][:12]
    tag = (tag or "latest")[:_MAX_LABEL_VALUE].strip("-_.")
    return tag if _LABEL_VALUE.match(tag) else "unknown"


def selector_labels(backend: api.TTSBackend) -> dict[str, str]:
    """Labels that select the backend's pods: fixed for the backend's life."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": backend.metadata.name,
        "app.kubernetes.io/component": COMPONENT,
    }


def labels(backend: api.TTSBackend) -> dict[str, str]:
    """The full `app.kubernetes.io/*` label set of every child."""
    return {
        **selector_labels(backend),
        "app.kubernetes.io/version": image_version(backend.spec.image),
        "app.kubernetes.io/part-of": APP_NAME,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_string(backend: api.TTSBackend) -> str:
    """The pod selector as `kubectl` and the /scale subresource write it."""
    return label_selector(selector_labels(backend))


def label_selector(labels: Mapping[str, str]) -> str:
    """Equality-based `labelSelector` text matching every one of `labels`, keys sorted."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


# What the operator watches, as kopf's handler filters (`labels=`) take it and, derived, as the watches'
# selector text: watched Secrets, the managed children, and gateway pods (the Deployment selector's labels).
SECRET_LABELS = {WATCH_LABEL: "true"}
CHILD_LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY}
GATEWAY_POD_LABELS = {"app.kubernetes.io/component": COMPONENT, "app.kubernetes.io/name": APP_NAME}
WATCHED_SECRETS = label_selector(SECRET_LABELS)
MANAGED_CHILDREN = label_selector(CHILD_LABELS)
GATEWAY_PODS = label_selector(GATEWAY_POD_LABELS)


def metadata(backend: api.TTSBackend, owner: OwnerRef, name: str | None = None) -> dict[str, Any]:
    """Metadata of a child: name (the backend's unless given), namespace, labels, controller owner."""
    return {
        "name": name or backend.metadata.name,
        "namespace": backend.metadata.namespace,
        "labels": labels(backend),
        "ownerReferences": [owner.to_reference()],
    }


def shares_config_map_name(backend: api.TTSBackend) -> str:
    """The ConfigMap holding the division of the fleet-wide budgets (written by the operator apart
    from the rendered children, so a new division rolls no pod)."""
    return f"{backend.metadata.name}-shares"


def config_map_name(backend_name: str) -> str:
    """The ConfigMap holding the gateway settings of the backend named `backend_name`."""
    return f"{backend_name}-config"
