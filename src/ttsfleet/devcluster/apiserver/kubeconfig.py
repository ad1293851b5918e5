"""Kubeconfig files for the embedded API: plain http, a dummy bearer token, one context.

kubectl, the `kubernetes` client and kopf (`login_via_client`, `login_with_kubeconfig`) all read it;
the emulator accepts any token, the token only keeps clients that insist on credentials content.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

DEFAULT_NAME = "ttsfleet-dev"
DEFAULT_TOKEN = "ttsfleet-devcluster"


def kubeconfig_document(
    server_url: str,
    *,
    name: str = DEFAULT_NAME,
    namespace: str = "default",
    token: str = DEFAULT_TOKEN,
) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context pointing at `server_url`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server_url}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }


def write_kubeconfig(
    path: Path,
    server_url: str,
    *,
    name: str = DEFAULT_NAME,
    namespace: str = "default",
    token: str = DEFAULT_TOKEN,
) -> Path:
    """Write the kubeconfig to `path` (mode 0600, as kubectl prefers) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(
        kubeconfig_document(server_url, name=name, namespace=namespace, token=token), sort_keys=False
    )
    # Created with 0600 from the start: kubectl warns about group/world-readable configs.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
    return path
