"""The smallest TTSBackend and watched Secret a user could apply, for the local fleet's tools.

The benchmarks and the suites that drive an API server start from these (tests add their own spec on
top), so the shape a backend needs, and the label that lets the operator see a key's Secret, are written
once; the label itself comes from the operator's watch filter.
"""

from __future__ import annotations

import base64
from typing import Any

import ttsfleet
from ttsfleet.operator import api
from ttsfleet.operator.rendering import meta

IMAGE = f"ghcr.io/ttsfleet/ttsfleet:{ttsfleet.__version__}"


def backend(name: str, **spec: Any) -> dict[str, Any]:
    """A TTSBackend reading its key from Secret `deepgram`, client auth off; `spec` adds or replaces."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": {
            "image": IMAGE,
            "deepgram": {"apiKeySecretRef": {"name": "deepgram"}},
            "auth": {"enabled": False},
            **spec,
        },
    }


def secret(
    name: str, key: str, value: str, *, watch: bool = True, namespace: str | None = None
) -> dict[str, Any]:
    """An Opaque Secret holding `value` under `key`, labelled for the operator's watch unless not `watch`."""
    metadata: dict[str, Any] = {"name": name, "labels": dict(meta.SECRET_LABELS) if watch else {}}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode()},
    }
