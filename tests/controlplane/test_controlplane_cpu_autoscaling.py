"""The real HPA controller scales a TTSBackend's Deployment on CPU, read by metrics-server from the node
agent: a load step of speaking agents scales it up, `kubectl get ttsb` shows the replicas move, and when
the load falls it scales down while agents keep speaking, every removed pod draining its sessions between
utterances, with no utterance lost or cut.

Everything but the gateways' pods is real Kubernetes: the operator (as the chart's ServiceAccount)
writes the HPA, kube-controller-manager's HPA controller reads `metrics.k8s.io` through the aggregator,
metrics-server scrapes the node agent's /metrics/resource, and the Deployment and ReplicaSet controllers
and the scheduler make, place and remove the pods, which the agent runs as processes. The cycle itself
is `benchmarks.hpa_cycle.load_cycle`, whose figures docs/performance.md reports (`-s` prints them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from benchmarks import hpa_cycle
from benchmarks.hpa_cycle import NAME, NAMESPACE, NODE, TARGET_PERCENT
from tests.controlplane.test_controlplane_metrics_server import node_and_admin, top_pods
from tests.controlplane.test_controlplane_operator_rbac import (
    chart_rbac,
    get,
    operator_as,
    release_namespace,
)
from tests.devcluster.test_runner_pods import KEY
from tests.operator.integration.conftest import secret  # type: ignore[import-not-found]
from tests.support.helm import helm
from tests.support.servers import ServerProcess
from tests.support.waiting import wait_until
from ttsfleet.devcluster.controlplane import provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.metricsserver.running import MetricsServer

__all__ = ["helm", "release_namespace"]  # fixtures, used by name
# A whole load cycle or a fleet of its own: longer than the suite-wide 120 s, bounded all the same.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MIRROR_DEADLINE_S = 120.0


def backend_warnings(plane: ControlPlane) -> list[str]:
    """Warning Events on the TTSBackend (the HPA, of the same name, posts its own)."""
    events = get(plane, f"/api/v1/namespaces/{NAMESPACE}/events") or {"items": []}
    return [
        f"{event['reason']}: {event['message']}"
        for event in events["items"]
        if event["involvedObject"]["kind"] == "TTSBackend" and event["type"] == "Warning"
    ]


async def test_the_hpa_scales_on_cpu_up_under_load_and_down_with_drains_losing_nothing(
    control_plane: ControlPlane,
    metrics_server: MetricsServer,
    helm: Path,
    release_namespace: str,
    emulator: ServerProcess,
    tmp_path: Path,
) -> None:
    provisioning.create_namespaces(control_plane, (NAMESPACE,))
    backends = f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends"
    with operator_as(control_plane, chart_rbac(helm, "cpu", NAMESPACE), NAMESPACE, tmp_path):
        async with node_and_admin(control_plane, tmp_path / "node", NODE, emulator.ws_url) as (node, admin):
            try:
                for path, body in (
                    (f"/api/v1/namespaces/{NAMESPACE}/secrets", secret("deepgram", "api-key", KEY)),
                    (backends, hpa_cycle.autoscaled_backend()),
                ):
                    response = await admin.post(path, json=body)
                    assert response.status_code == 201, response.text

                async def mirrored_active() -> bool:
                    # The operator mirrors the real controller's verdict on its next probe tick.
                    node.check()
                    body: dict[str, Any] = (await admin.get(f"{backends}/{NAME}")).json()
                    conditions = (body.get("status") or {}).get("conditions") or ()
                    scaling = {c["type"]: c for c in conditions}.get("ScalingActive") or {}
                    return (scaling.get("status"), scaling.get("reason")) == ("True", "ValidMetricFound")

                await wait_until(mirrored_active, MIRROR_DEADLINE_S, "ScalingActive=True on the backend")
                selector = f"app.kubernetes.io/instance={NAME}"
                assert await asyncio.to_thread(top_pods, control_plane, NAMESPACE, selector, 1)
                columns = await asyncio.to_thread(hpa_cycle.ttsb_columns, control_plane, NAMESPACE, NAME)
                assert (columns["REPLICAS"], columns["DESIRED"]) == ("1", "1")

                figures = await hpa_cycle.load_cycle(control_plane, node, admin)
                print(f"\n{figures.describe()}")
                assert figures.idle_percent < TARGET_PERCENT
                assert 1 < figures.peak <= hpa_cycle.MAX_REPLICAS
                up, down = figures.up_columns, figures.down_columns
                assert int(up["REPLICAS"]) == int(up["DESIRED"]) == figures.peak
                assert int(down["REPLICAS"]) < figures.peak and int(down["DESIRED"]) < figures.peak
                assert figures.load.delivered > 0 and figures.trickle.delivered > 0
                assert figures.load.lost == [] and figures.trickle.lost == []
                # With metrics-server installed, the first scrapes' gap (no samples for a new pod) is a
                # wait, never a Warning to install it.
                assert backend_warnings(control_plane) == []
            finally:
                await admin.delete(f"{backends}/{NAME}")
