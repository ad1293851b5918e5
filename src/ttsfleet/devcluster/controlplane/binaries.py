"""Where the control plane's programs are: a user's envtest assets, else the per-version build cache."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# The pinned Go module sits at the repository root, beside this package's folder (a dev-only tool that
# runs from a checkout). Its go.mod is the one place the Kubernetes version is written.
MODULE_DIR = Path(__file__).resolve().parents[4] / "controlplane"
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ALL_PROGRAMS = ("etcd", *KUBERNETES_COMMANDS)
ASSETS_VARIABLE = "KUBEBUILDER_ASSETS"
CACHE_VARIABLE = "TTSFLEET_CONTROLPLANE_CACHE"
BUILD_HINT = "run `make controlplane` (docs/development.md)"


class MissingControlPlane(RuntimeError):
    """A control-plane program is neither in the envtest assets nor in the build cache."""


@dataclass(frozen=True)
class Programs:
    etcd: Path
    apiserver: Path
    controller_manager: Path
    scheduler: Path
    kubectl: Path


def kubernetes_version(module: Path = MODULE_DIR) -> str:
    """The `k8s.io/kubernetes` version the module requires (e.g. `v1.37.2`)."""
    found = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", (module / "go.mod").read_text(), re.MULTILINE)
    if found is None:
        raise MissingControlPlane(f"{module / 'go.mod'} does not require k8s.io/kubernetes")
    return found.group(1)


def cache_root() -> Path:
    """$TTSFLEET_CONTROLPLANE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/ttsfleet/controlplane."""
    explicit = os.environ.get(CACHE_VARIABLE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttsfleet" / "controlplane"


def cache_dir(version: str) -> Path:
    return cache_root() / version


def _find(name: str, places: list[Path]) -> Path:
    for place in places:
        candidate = place / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    searched = ", ".join(str(place) for place in places)
    raise MissingControlPlane(f"{name} is not in {searched}: {BUILD_HINT}")


def locate() -> Programs:
    """Each program from $KUBEBUILDER_ASSETS when it has it (envtest ships etcd, kube-apiserver and
    kubectl only), else from the build cache of the pinned version."""
    places: list[Path] = []
    assets = os.environ.get(ASSETS_VARIABLE)
    if assets:
        places.append(Path(assets))
    places.append(cache_dir(kubernetes_version()))
    return Programs(
        etcd=_find("etcd", places),
        apiserver=_find("kube-apiserver", places),
        controller_manager=_find("kube-controller-manager", places),
        scheduler=_find("kube-scheduler", places),
        kubectl=_find("kubectl", places),
    )
