"""The real HPA controller scales a TTSBackend's Deployment on CPU, read by metrics-server from the node
agent: a load step of speaking agents scales it up, `kubectl get ttsb` shows the replicas move, and when
the load falls it scales down while agents keep speaking, every removed pod draining its sessions between
utterances, with no utterance lost or cut.

Everything but the gateways' pods is real Kubernetes: the operator (as the chart's ServiceAccount)
writes the HPA, kube-controller-manager's HPA controller reads `metrics.k8s.io` through the aggregator,
metrics-server scrapes the node agent's /metrics/resource, and the Deployment and ReplicaSet controllers
and the scheduler make, place and remove the pods, which the agent runs as processes. Run with `-s` it
prints the cycle's figures (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.controlplane.speaking_load import crowd
from tests.controlplane.test_controlplane_operator_rbac import chart_rbac, operator_as, release_namespace
from tests.controlplane.test_controlplane_resource_metrics import top_pods
from tests.devcluster.test_runner_pods import KEY
from tests.operator.integration.conftest import backend, secret, wait_until  # type: ignore[import-not-found]
from tests.support.helm import helm
from tests.support.servers import ServerProcess
from ttsfleet.devcluster.controlplane import provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.metricsserver.running import MetricsServer
from ttsfleet.devcluster.nodeagent import stack

__all__ = ["helm", "release_namespace"]  # fixtures, used by name
pytestmark = pytest.mark.slow

NAMESPACE, NAME, NODE = "voice-cpu", "aura", "ttsfleet-cpu"
TARGET_PERCENT = 50
# Low on purpose: a few streaming sessions must lift a pod well past the target, while idle pods (probes
# only) and a trickle of speech must stay far enough below it for the HPA to remove pods again.
CPU_REQUEST = "100m"
MAX_REPLICAS = 3
LOAD_AGENTS = 4  # speaking one sentence after another
TRICKLE_AGENTS = 3  # one sentence every few seconds, through scale-up and scale-down
TRICKLE_PAUSE_S = 4.0
START_DEADLINE_S = 120.0
# metrics-server needs two scrapes (10 s apart) for a rate; the HPA controller evaluates every 15 s.
SCALE_DEADLINE_S = 240.0
# Scale-down without the production default's 5-minute stabilization, one pod per 15 s.
FAST_SCALE_DOWN = {
    "stabilizationWindowSeconds": 0,
    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}],
}


def autoscaled_backend() -> dict[str, Any]:
    return backend(
        NAME,
        autoscaling={
            "minReplicas": 1,
            "maxReplicas": MAX_REPLICAS,
            "targetCPUUtilizationPercentage": TARGET_PERCENT,
            "behavior": {"scaleDown": FAST_SCALE_DOWN},
        },
        resources={"requests": {"cpu": CPU_REQUEST, "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    )


def ttsb_columns(plane: ControlPlane) -> dict[str, str]:
    """`kubectl get ttsb` as a user reads it: column name → value."""
    out = plane.kubectl("get", "ttsb", NAME, "-n", NAMESPACE)
    header, row = out.splitlines()[:2]
    return dict(zip(header.split(), row.split(), strict=False))


async def get(admin: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await admin.get(path)
    return dict(response.json()) if response.status_code == 200 else {}


async def test_the_hpa_scales_on_cpu_up_under_load_and_down_with_drains_losing_nothing(
    control_plane: ControlPlane,
    metrics_server: MetricsServer,
    helm: Path,
    release_namespace: str,
    emulator: ServerProcess,
    tmp_path: Path,
) -> None:
    provisioning.create_namespaces(control_plane, (NAMESPACE,))
    base = f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends"
    hpa_path = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/{NAME}"
    deployment_path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"
    with operator_as(control_plane, chart_rbac(helm, "cpu", NAMESPACE), NAMESPACE, tmp_path):
        async with (
            stack.running_node(control_plane, tmp_path / "node", NODE, emulator.ws_url) as node,
            httpx.AsyncClient(
                base_url=control_plane.server, verify=control_plane.admin_tls(), timeout=10
            ) as admin,
        ):
            try:
                for path, body in (
                    (f"/api/v1/namespaces/{NAMESPACE}/secrets", secret("deepgram", "api-key", KEY)),
                    (base, autoscaled_backend()),
                ):
                    response = await admin.post(path, json=body)
                    assert response.status_code == 201, response.text

                async def one_pod_measured() -> dict[str, Any] | None:
                    node.check()
                    hpa = await get(admin, hpa_path)
                    metrics = (hpa.get("status") or {}).get("currentMetrics") or []
                    read = [m for m in metrics if m.get("type") == "Resource"]
                    return hpa if read and hpa["status"].get("currentReplicas") == 1 else None

                hpa = await wait_until(one_pod_measured, START_DEADLINE_S, "the HPA reading one pod's CPU")
                idle = hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
                assert idle < TARGET_PERCENT, f"an idle gateway already uses {idle}% of {CPU_REQUEST}"
                assert ttsb_columns(control_plane)["REPLICAS"] == "1"

                async def mirrored_active() -> bool:
                    # The operator mirrors the real controller's verdict on its next probe tick.
                    conditions = ((await get(admin, f"{base}/{NAME}")).get("status") or {}).get("conditions")
                    scaling = {c["type"]: c for c in conditions or ()}.get("ScalingActive") or {}
                    return (scaling.get("status"), scaling.get("reason")) == ("True", "ValidMetricFound")

                await wait_until(
                    mirrored_active, START_DEADLINE_S, "ScalingActive=True mirrored on the backend"
                )
                assert await asyncio.to_thread(
                    top_pods, control_plane, NAMESPACE, f"app.kubernetes.io/instance={NAME}", 1
                )

                await wait_until(
                    lambda: node.proxy.address(NAMESPACE, NAME, "http") is not None, 30, "the Service"
                )
                host, port = node.proxy.address(NAMESPACE, NAME, "http") or ("", 0)
                url = f"ws://{host}:{port}"

                async def replicas() -> int:
                    return int(((await get(admin, deployment_path)).get("spec") or {}).get("replicas", 1))

                def serving() -> int:
                    return len(node.proxy.endpoints(NAMESPACE, NAME, "http"))

                async with crowd(url, "trickle", TRICKLE_AGENTS, TRICKLE_PAUSE_S) as trickle:
                    step = time.monotonic()
                    async with crowd(url, "load", LOAD_AGENTS) as load:

                        async def scaled_up() -> dict[str, str] | None:
                            node.check()
                            if await replicas() <= 1:
                                return None
                            columns = await asyncio.to_thread(ttsb_columns, control_plane)
                            wanted = int(columns["DESIRED"]) > 1 and int(columns["REPLICAS"]) > 1
                            return columns if wanted else None

                        grown = await wait_until(scaled_up, SCALE_DEADLINE_S, "the HPA to scale up")
                        decided_s = time.monotonic() - step
                        peak = await replicas()
                        await wait_until(lambda: serving() == peak, SCALE_DEADLINE_S, f"{peak} pods serving")
                        serving_s = time.monotonic() - step
                    fall = time.monotonic()

                    async def scaled_down() -> dict[str, str] | None:
                        node.check()
                        if await replicas() >= peak or serving() >= peak:
                            return None
                        return await asyncio.to_thread(ttsb_columns, control_plane)

                    shrunk = await wait_until(scaled_down, SCALE_DEADLINE_S, "the HPA to scale down")
                    shrunk_s = time.monotonic() - fall
                    # Keep speaking until the removed pods' processes are gone: their drains are over.
                    await wait_until(
                        lambda: len(node.agent.pod_names()) <= serving(), SCALE_DEADLINE_S, "drains done"
                    )
                assert load.delivered > 0 and trickle.delivered > 0
                assert load.lost == [] and trickle.lost == [], (load.lost, trickle.lost)
                hpa = await get(admin, hpa_path)
                assert 1 < peak <= MAX_REPLICAS
                print(
                    f"\nidle CPU {idle}% of {CPU_REQUEST}; load step → HPA decision {decided_s:.0f} s, → "
                    f"{peak} pods serving {serving_s:.0f} s; load fall → fewer pods {shrunk_s:.0f} s; "
                    f"kubectl get ttsb: up {grown['REPLICAS']}/{grown['DESIRED']}, down "
                    f"{shrunk['REPLICAS']}/{shrunk['DESIRED']}; load {load}; trickle {trickle}; "
                    f"HPA now {hpa['status'].get('currentReplicas')}→{hpa['status'].get('desiredReplicas')}"
                )
            finally:
                await admin.delete(f"{base}/{NAME}")
                await admin.delete(f"/api/v1/nodes/{NODE}")
