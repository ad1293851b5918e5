"""Find helm for the chart tests and render the chart with it.

helm comes from a PyPI wheel (`scripts/install_helm.py`, run by `make install`) and lives next to the
venv's Python. A missing helm fails the tests loudly: silently skipping would let a broken chart pass CI.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import require_tool
from ttsfleet.devcluster.controlplane import chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ttsfleet"
RELEASE = "fleet"
RELEASE_NAMESPACE = "ttsfleet-system"
HELM_TIMEOUT_S = 60
NAMESPACED_VALUES = CHART / "ci" / "namespaced-values.yaml"
CLUSTER_VALUES = CHART / "ci" / "cluster-values.yaml"
WATCHED_NAMESPACES = ("voice", "voice-staging")  # as listed in ci/namespaced-values.yaml
Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary; fails (never skips) when it is not installed."""
    return require_tool("helm")


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with no kubeconfig and no user state, so the host's files cannot change a result."""
    env = chart.helm_environment(ROOT / "build" / "helm-home")
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, env=env, timeout=HELM_TIMEOUT_S, check=False
    )


def template_command(values_files: Sequence[Path] = (), set_values: Sequence[str] = ()) -> list[str]:
    """Arguments of `helm template` for the chart in the test release and namespace."""
    args = ["template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE]
    for path in values_files:
        args += ["--values", str(path)]
    for assignment in set_values:
        args += ["--set", assignment]
    return args


def render(helm: Path, values_files: Sequence[Path] = (), set_values: Sequence[str] = ()) -> list[Manifest]:
    """Every document `helm template` renders, parsed; fails the test with helm's error otherwise."""
    result = run_helm(helm, *template_command(values_files, set_values))
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    """The objects of one kind."""
    return [doc for doc in manifests if doc["kind"] == kind]


def one(manifests: Iterable[Manifest], kind: str) -> Manifest:
    """The only object of a kind; fails when there is not exactly one."""
    found = of_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


Grant = tuple[str, str, str]  # (API group, resource[/subresource], verb)


def operator_grants(manifests: Iterable[Manifest], service_account: str) -> dict[str, set[Grant]]:
    """What the chart lets `service_account` do, by scope: "" for cluster-wide, else the namespace.

    Follows the (Cluster)RoleBindings to the roles they name, so roles bound to nobody (the aggregated
    user roles) do not count. The RBAC audit of the operator's API calls can check against this.
    """
    docs = list(manifests)
    roles = {
        (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]): doc for doc in docs
    }
    grants: dict[str, set[Grant]] = {}
    for binding in of_kind(docs, "ClusterRoleBinding") + of_kind(docs, "RoleBinding"):
        if not any(
            subject["kind"] == "ServiceAccount" and subject["name"] == service_account
            for subject in binding["subjects"]
        ):
            continue
        scope = binding["metadata"].get("namespace", "")
        ref = binding["roleRef"]
        role_namespace = "" if ref["kind"] == "ClusterRole" else scope
        role = roles[(ref["kind"], role_namespace, ref["name"])]
        for rule in role["rules"]:
            grants.setdefault(scope, set()).update(
                (group, resource, verb)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            )
    return grants


RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def rbac_objects(manifests: Iterable[Manifest], namespaces: Iterable[str]) -> list[Manifest]:
    """The chart's RBAC objects that an API holding only `namespaces` (and cluster scope) can store."""
    wanted = set(namespaces)
    return [
        doc
        for doc in manifests
        if doc["kind"] in RBAC_KINDS and doc["metadata"].get("namespace", "") in wanted | {""}
    ]
