"""The real HPA controller scales a TTSBackend on the local fleet (`ttsfleet dev up` with metrics-server).

A second backend beside the examples' one, autoscaled on CPU with the benchmark's settings
(`benchmarks.hpa_cycle`: target, request, fast scale-down, load): agents speak through its Service on the
local proxy, a load step scales it up, `kubectl get ttsb` (the control plane's own kubectl) shows
REPLICAS and DESIRED move, and when the load falls the HPA removes pods while a trickle keeps speaking,
every removed pod draining its sessions between utterances: no utterance lost or cut.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import pytest

from benchmarks import hpa_cycle
from benchmarks.speaking_crowd import crowd
from tests.e2e.cluster import Body, Cluster
from tests.e2e.conftest import NAMESPACE, LocalFleet
from tests.support.waiting import wait_until
from ttsfleet.devcluster import fleet, manifests

# A whole load cycle or a fleet of its own: longer than the suite-wide 120 s, bounded all the same.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
NAME = hpa_cycle.NAME  # beside the examples' backend, in its namespace
BACKEND = f"{NAME}.{NAMESPACE}"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
HPAS = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
DEADLINE_S = hpa_cycle.SCALE_DEADLINE_S


def kubectl_get_ttsb(state: fleet.FleetState) -> dict[str, str]:
    """`kubectl get ttsb` with the fleet's kubeconfig and the control plane's kubectl."""
    assert state.kubectl is not None, "the real control plane records its kubectl"
    table = subprocess.run(
        [state.kubectl, "--kubeconfig", state.kubeconfig, "get", "ttsb", NAME, "-n", NAMESPACE],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return hpa_cycle.printed_columns(table)


def ready_endpoints(slices: list[Body]) -> int:
    return sum(
        1
        for piece in slices
        for endpoint in piece.get("endpoints") or ()
        if (endpoint.get("conditions") or {}).get("ready")
    )


def replicas(deployments: list[Body]) -> int:
    return int(deployments[0]["spec"].get("replicas", 1)) if deployments else 0


async def shown(state: fleet.FleetState, wanted: Any) -> dict[str, str]:
    """`kubectl get ttsb` once REPLICAS satisfies `wanted` (status follows on the operator's probe ticks)."""

    async def columns() -> dict[str, str] | None:
        found = await asyncio.to_thread(kubectl_get_ttsb, state)
        return found if found.get("REPLICAS", "").isdigit() and wanted(int(found["REPLICAS"])) else None

    found: dict[str, str] = await wait_until(columns, DEADLINE_S, "kubectl get ttsb showing the replicas")
    return found


async def test_the_hpa_scales_a_backend_of_the_local_fleet_up_and_down_losing_nothing(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    state = local_fleet.state
    backend = hpa_cycle.autoscaled_backend()
    backend["metadata"]["namespace"] = NAMESPACE
    secret = manifests.secret("deepgram", "api-key", "any-key", namespace=NAMESPACE)  # the emulator is open
    for body in (secret, backend):
        await cluster.apply(body)
    one_deployment = {"fieldSelector": f"metadata.name={NAME}"}
    slices = {"labelSelector": f"kubernetes.io/service-name={NAME}"}

    def one_pod_measured(hpas: list[Body]) -> bool:
        status = (hpas[0].get("status") or {}) if hpas else {}
        read = [m for m in status.get("currentMetrics") or () if m.get("type") == "Resource"]
        return bool(read) and status.get("currentReplicas") == 1

    hpas = await cluster.wait(
        HPAS, one_pod_measured, hpa_cycle.START_DEADLINE_S, "the HPA reading one pod's CPU", **one_deployment
    )
    idle = int(hpas[0]["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"])
    assert idle < hpa_cycle.TARGET_PERCENT
    url = await wait_until(lambda: fleet.read_services(local_fleet.state_dir).get(BACKEND), 30, "the Service")

    async with crowd(url, "trickle", hpa_cycle.TRICKLE_AGENTS, hpa_cycle.TRICKLE_PAUSE_S) as trickle:
        step = time.monotonic()
        async with crowd(url, "load", hpa_cycle.LOAD_AGENTS) as load:
            deployments = await cluster.wait(
                DEPLOYMENTS, lambda items: replicas(items) > 1, DEADLINE_S, "scale-up", **one_deployment
            )
            decided_s = time.monotonic() - step
            peak = replicas(deployments)
            await cluster.wait(
                SLICES, lambda items: ready_endpoints(items) >= peak, DEADLINE_S, "the pods serving", **slices
            )
            serving_s = time.monotonic() - step
            up = await shown(state, lambda shown_replicas: shown_replicas == peak)
        fall = time.monotonic()
        await cluster.wait(
            DEPLOYMENTS, lambda items: replicas(items) < peak, DEADLINE_S, "scale-down", **one_deployment
        )
        await cluster.wait(
            SLICES, lambda items: ready_endpoints(items) < peak, DEADLINE_S, "fewer pods serving", **slices
        )
        shrunk_s = time.monotonic() - fall
        down = await shown(state, lambda shown_replicas: shown_replicas < peak)
        # The trickle keeps speaking until the removed pods are gone: their drains are over.
        await cluster.wait(
            PODS,
            lambda pods: not any(pod["metadata"].get("deletionTimestamp") for pod in pods),
            DEADLINE_S,
            "the removed pods' drains",
            labelSelector=f"app.kubernetes.io/instance={NAME}",
        )
        drained_s = time.monotonic() - fall

    print(
        f"\nidle CPU {idle}%; load step → HPA decision {decided_s:.1f} s, → {peak} pods serving"
        f" {serving_s:.1f} s; load fall → fewer serving {shrunk_s:.1f} s, → drained {drained_s:.1f} s"
        f"\nkubectl get ttsb: up {up['REPLICAS']}/{up['DESIRED']}, down {down['REPLICAS']}/{down['DESIRED']}"
        f"\nload {load}\ntrickle {trickle}"
    )
    assert 1 < peak <= hpa_cycle.MAX_REPLICAS
    assert int(up["REPLICAS"]) == int(up["DESIRED"]) == peak
    assert int(down["REPLICAS"]) < peak and int(down["DESIRED"]) < peak
    assert load.delivered > 0 and trickle.delivered > 0
    assert load.lost == [] and trickle.lost == []
