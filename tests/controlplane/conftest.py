"""The real control plane's tests share the suite-wide `control_plane` fixture (tests/support/
controlplane.py, registered in tests/conftest.py); each test works in objects it names itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.controlplane import NAMESPACE, ROOT
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.metricsserver import build, running

__all__ = ["NAMESPACE", "ROOT"]


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
