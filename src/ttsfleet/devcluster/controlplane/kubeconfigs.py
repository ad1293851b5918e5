"""kubeconfig files for the cluster: client-certificate users and a ServiceAccount token user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ttsfleet.devcluster.controlplane.pki import KeyPair

CLUSTER = "ttsfleet-dev"


def _document(
    server: str, ca: Path, user: str, credentials: dict[str, Any], namespace: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {
                "name": f"{user}@{CLUSTER}",
                "context": {"cluster": CLUSTER, "user": user, "namespace": namespace},
            }
        ],
        "current-context": f"{user}@{CLUSTER}",
        "preferences": {},
    }


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def write_certificate(
    path: Path, *, server: str, ca: Path, user: str, pair: KeyPair, namespace: str = "default"
) -> Path:
    credentials = {"client-certificate": str(pair.certificate), "client-key": str(pair.key)}
    return _write(path, _document(server, ca, user, credentials, namespace))


def write_token(path: Path, *, server: str, ca: Path, user: str, token: str, namespace: str) -> Path:
    return _write(path, _document(server, ca, user, {"token": token}, namespace))
