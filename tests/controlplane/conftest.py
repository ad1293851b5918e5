"""One real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) per test run.

Built by `make controlplane` from the pinned Go module; missing binaries fail the tests (a skip would
let the operator's real-cluster behaviour go untested in CI). Tests share the cluster, so each one
works in objects it names itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ttsfleet.devcluster.controlplane import binaries, provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane, running_control_plane

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


def wait_for(
    condition: Callable[[], Any], deadline_s: float = 30.0, what: str | Callable[[], str] = "condition"
) -> Any:
    """Check `condition` until it returns something truthy (returned); fail at the deadline, saying
    `what` was awaited (a callable is asked then, so it can describe the state at the deadline)."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {deadline_s} s waiting for {described}")
        time.sleep(0.1)  # a poll step between checks of a real cluster, not a synchronisation
