"""One real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) per test run.

Built by `make controlplane` from the pinned Go module; missing binaries fail the tests (a skip would
let the operator's real-cluster behaviour go untested in CI). Tests share the cluster, so each one
works in objects it names itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ttsfleet.devcluster.controlplane import binaries, provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane, running_control_plane
from ttsfleet.devcluster.metricsserver import build, running

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "voice"


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        binaries.locate()
    except binaries.MissingControlPlane as missing:
        pytest.fail(str(missing), pytrace=False)
    with running_control_plane(tmp_path_factory.mktemp("control-plane")) as plane:
        provisioning.apply_crds(plane, ROOT / "crds")
        provisioning.create_namespaces(plane, (NAMESPACE,))
        yield plane


@pytest.fixture(scope="session")
def metrics_server(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[running.MetricsServer]:
    """metrics-server, built by `make metrics-server`, serving v1beta1.metrics.k8s.io (Available)."""
    try:
        build.locate()
    except build.MissingMetricsServer as missing:
        pytest.fail(str(missing), pytrace=False)
    with running.running_metrics_server(control_plane, tmp_path_factory.mktemp("metrics-server")) as server:
        yield server
