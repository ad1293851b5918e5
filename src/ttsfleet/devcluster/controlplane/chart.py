"""The operator's identity on the real control plane: the chart's own ServiceAccount and RBAC.

`helm template` renders the chart in the repository (so a grant the chart lacks is missing here too);
its ServiceAccount, Roles and bindings are applied, and the operator gets a kubeconfig holding only a
token of that ServiceAccount. Used by `dev up` and by the control-plane tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ttsfleet.devcluster.controlplane import binaries, provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane

CHART = binaries.MODULE_DIR.parent / "charts" / "ttsfleet"
RBAC_KINDS = frozenset({"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})
HELM_HINT = "run `make install` (it puts helm into .venv/bin; docs/development.md)"
HELM_TIMEOUT_S = 60
Manifest = dict[str, Any]


def find_helm() -> Path:
    """helm next to the running interpreter (the venv's bin), else on PATH."""
    beside_python = Path(sys.executable).parent / "helm"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("helm")
    if on_path is None:
        raise RuntimeError(f"helm is not installed: {HELM_HINT}")
    return Path(on_path)


def helm_environment(home: Path) -> dict[str, str]:
    """helm's environment with no kubeconfig and all its state under `home`: the host's files cannot
    change what it renders."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }


def operator_rbac(
    helm: Path, release: str, namespace: str, set_values: Sequence[str], scratch: Path
) -> list[Manifest]:
    """The chart's ServiceAccount and RBAC objects for `release` in `namespace`, with `set_values`
    (helm's state in `scratch`)."""
    env = helm_environment(scratch / "helm-home")
    argv = [str(helm), "template", release, str(CHART), "--namespace", namespace]
    for assignment in set_values:
        argv += ["--set", assignment]
    rendered = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=HELM_TIMEOUT_S, check=False
    )
    if rendered.returncode != 0:
        raise RuntimeError(f"helm template failed: {rendered.stderr.strip()}")
    documents = [document for document in yaml.safe_load_all(rendered.stdout) if document]
    return [document for document in documents if document["kind"] in RBAC_KINDS]


def install_operator_identity(plane: ControlPlane, manifests: list[Manifest], kubeconfig: Path) -> Path:
    """Apply `manifests` (as an admin installing the chart would) and write `kubeconfig` acting as
    their ServiceAccount: whoever uses it has the chart's grants and nothing more."""
    plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    account = next(m for m in manifests if m["kind"] == "ServiceAccount")["metadata"]
    return provisioning.service_account_kubeconfig(plane, account["namespace"], account["name"], kubeconfig)
