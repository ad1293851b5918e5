"""The real HPA controller scales a TTSBackend's Deployment on CPU, read by metrics-server from the node
agent, when its gateway pods are loaded with speech; `kubectl get ttsb` shows the replicas move.

Everything but the gateways' pods is real Kubernetes: the operator (as the chart's ServiceAccount)
writes the HPA, kube-controller-manager's HPA controller reads `metrics.k8s.io` through the aggregator,
metrics-server scrapes the node agent's /metrics/resource, and the Deployment and ReplicaSet controllers
and the scheduler make and place the new pods, which the agent runs as processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.controlplane.test_controlplane_operator_rbac import chart_rbac, operator_as, release_namespace
from tests.controlplane.test_controlplane_resource_metrics import top_pods
from tests.devcluster.test_runner_pods import KEY
from tests.operator.integration.conftest import backend, secret, wait_until  # type: ignore[import-not-found]
from tests.support.helm import helm
from tests.support.servers import ServerProcess
from ttsfleet import client
from ttsfleet.devcluster.controlplane import provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.metricsserver.running import MetricsServer
from ttsfleet.devcluster.nodeagent import stack
from ttsfleet.protocol import Encoding, SpeakOptions

__all__ = ["helm", "release_namespace"]  # fixtures, used by name
pytestmark = pytest.mark.slow

NAMESPACE, NAME, NODE = "voice-cpu", "aura", "ttsfleet-cpu"
TARGET_PERCENT = 50
# Low on purpose: a few streaming sessions must lift a pod well past the target, an idle pod (probes
# only) must stay below it.
CPU_REQUEST = "20m"
MAX_REPLICAS = 3
SPEAKERS = 4
START_DEADLINE_S = 120.0
# metrics-server needs two scrapes (10 s apart) for a rate; the HPA controller evaluates every 15 s.
SCALE_DEADLINE_S = 240.0
SENTENCE = "Sentence {} of a steady load: the quick brown fox jumps over the lazy dog."
# Below the protocol's 20 flushes per 60 s on one socket (PROTOCOL.md): an agent then reconnects.
UTTERANCES_PER_SESSION = 10


def autoscaled_backend() -> dict[str, Any]:
    return backend(
        NAME,
        autoscaling={
            "minReplicas": 1,
            "maxReplicas": MAX_REPLICAS,
            "targetCPUUtilizationPercentage": TARGET_PERCENT,
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


@contextlib.asynccontextmanager
async def speakers(url: str, count: int) -> AsyncIterator[list[int]]:
    """`count` agents speaking one sentence after another until the block ends; yields the utterances
    completed per agent."""
    done = [0] * count
    stop = asyncio.Event()
    options = SpeakOptions(model="aura-2-thalia-en", encoding=Encoding.LINEAR16, sample_rate=16000)

    async def speak(index: int) -> None:
        while not stop.is_set():
            async with client.SpeakClient(url, "unused", options) as session:
                for _ in range(UTTERANCES_PER_SESSION):
                    if stop.is_set():
                        break
                    # Distinct text each time, so every utterance goes upstream (no cache hits).
                    utterance = await session.speak(SENTENCE.format(f"{index}-{done[index]}"))
                    assert len(utterance.audio) > 1000
                    done[index] += 1

    tasks = [asyncio.create_task(speak(i), name=f"speaker {i}") for i in range(count)]
    try:
        yield done
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_the_hpa_scales_a_loaded_backend_on_cpu_and_kubectl_get_ttsb_shows_it(
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
                async with speakers(f"ws://{host}:{port}", SPEAKERS) as spoken:

                    async def scaled_up() -> dict[str, str] | None:
                        node.check()
                        deployment = await get(admin, deployment_path)
                        if (deployment.get("spec") or {}).get("replicas", 1) <= 1:
                            return None
                        columns = await asyncio.to_thread(ttsb_columns, control_plane)
                        return (
                            columns if int(columns["DESIRED"]) > 1 and int(columns["REPLICAS"]) > 1 else None
                        )

                    columns = await wait_until(
                        scaled_up, SCALE_DEADLINE_S, "the HPA to scale the loaded backend up"
                    )
                assert sum(spoken) > 0
                hpa = await get(admin, hpa_path)
                assert 1 < hpa["status"]["desiredReplicas"] <= MAX_REPLICAS
                print(
                    f"kubectl get ttsb after the load step: {columns}; idle CPU {idle}%; utterances {spoken}"
                )
            finally:
                await admin.delete(f"{base}/{NAME}")
                await admin.delete(f"/api/v1/nodes/{NODE}")
