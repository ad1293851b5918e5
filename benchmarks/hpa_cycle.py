"""A full autoscaling cycle of one TTSBackend under the real HPA controller, as figures for
docs/performance.md: time from a load step to the HPA's decision and to the new pods serving, time from
the load's fall to fewer pods, and the utterances delivered, drained and lost on the way (must be 0).

The real control plane runs with metrics-server (both built by `make controlplane metrics-server`), the
operator, one node agent running the gateways as processes, and the emulator upstream. Agents speak
through the node's Service proxy: a trickle throughout, and a load of agents speaking back to back
between the step and the fall. `tests/controlplane/test_controlplane_cpu_autoscaling.py` runs the same
cycle (`load_cycle`) with the operator as the chart's ServiceAccount and asserts what must hold.

    python -m benchmarks.hpa_cycle
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks import processes, waiting
from benchmarks.speaking_crowd import Score, crowd
from ttsfleet.devcluster import manifests
from ttsfleet.devcluster.controlplane import provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane, running_control_plane
from ttsfleet.devcluster.metricsserver.running import running_metrics_server
from ttsfleet.devcluster.nodeagent import stack

ROOT = Path(__file__).resolve().parents[1]
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
POLL_S = 0.1


def autoscaled_backend() -> dict[str, Any]:
    """The TTSBackend the cycle scales: CPU target, fast scale-down, a small CPU request."""
    return manifests.backend(
        NAME,
        autoscaling={
            "minReplicas": 1,
            "maxReplicas": MAX_REPLICAS,
            "targetCPUUtilizationPercentage": TARGET_PERCENT,
            "behavior": {"scaleDown": FAST_SCALE_DOWN},
        },
        resources={"requests": {"cpu": CPU_REQUEST, "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    )


@dataclass(frozen=True)
class CycleFigures:
    """What one cycle measured."""

    idle_percent: int  # the HPA's CPU utilisation of the one idle pod
    decided_s: float  # load step → the HPA raised the Deployment's replicas
    serving_s: float  # load step → every pod of the peak in the Service's ready endpoints
    peak: int
    shrunk_s: float  # load fall → fewer pods in the Service
    drained_s: float  # load fall → the removed pods' processes gone (their drains over)
    up_columns: dict[str, str]  # `kubectl get ttsb` once it shows the peak
    shown_up_s: float  # load step → `kubectl get ttsb` shows the peak (the operator's next probe tick)
    down_columns: dict[str, str]  # … once it shows fewer pods
    shown_down_s: float  # load fall → `kubectl get ttsb` shows fewer pods
    load: Score
    trickle: Score

    def describe(self) -> str:
        up, down = self.up_columns, self.down_columns
        lines = [
            f"idle CPU {self.idle_percent}% of {CPU_REQUEST} (target {TARGET_PERCENT}%)",
            f"load step → HPA decision: {self.decided_s:.1f} s;"
            f" → {self.peak} pods serving: {self.serving_s:.1f} s",
            f"load fall → fewer pods serving: {self.shrunk_s:.1f} s; → drained: {self.drained_s:.1f} s",
            f"kubectl get ttsb: up REPLICAS {up['REPLICAS']} DESIRED {up['DESIRED']}"
            f" after {self.shown_up_s:.1f} s, down REPLICAS {down['REPLICAS']} DESIRED {down['DESIRED']}"
            f" after {self.shown_down_s:.1f} s",
        ]
        for name, score in (("load", self.load), ("trickle", self.trickle)):
            lines.append(
                f"{name} agents: {score.delivered} delivered, {score.drained} drained and said again, "
                f"{len(score.lost)} lost"
            )
        return "\n".join(lines)


def printed_columns(table: str) -> dict[str, str]:
    """The first row of `kubectl get`'s table as a user reads it: column name → value (pure)."""
    header, row = table.splitlines()[:2]
    return dict(zip(header.split(), row.split(), strict=False))


def ttsb_columns(plane: ControlPlane, namespace: str, name: str) -> dict[str, str]:
    """`kubectl get ttsb` as a user reads it: column name → value."""
    return printed_columns(plane.kubectl("get", "ttsb", name, "-n", namespace))


async def _get(admin: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await admin.get(path)
    return dict(response.json()) if response.status_code == 200 else {}


async def load_cycle(plane: ControlPlane, node: stack.Node, admin: httpx.AsyncClient) -> CycleFigures:
    """Wait for the HPA to read the one idle pod, then step the load up and down, timing the pods."""
    hpa_path = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/{NAME}"
    deployment_path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"

    async def one_pod_measured() -> dict[str, Any] | None:
        node.check()
        hpa = await _get(admin, hpa_path)
        metrics = (hpa.get("status") or {}).get("currentMetrics") or []
        read = [m for m in metrics if m.get("type") == "Resource"]
        return hpa if read and hpa["status"].get("currentReplicas") == 1 else None

    hpa = await waiting.until(one_pod_measured, START_DEADLINE_S, "HPA reading one pod's CPU", POLL_S)
    idle = int(hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"])

    async def proxied() -> tuple[str, int] | None:
        return node.proxy.address(NAMESPACE, NAME, "http")

    host, port = await waiting.until(proxied, 30, "Service listener", POLL_S)
    url = f"ws://{host}:{port}"

    async def replicas() -> int:
        return int(((await _get(admin, deployment_path)).get("spec") or {}).get("replicas", 1))

    def serving() -> int:
        return len(node.proxy.endpoints(NAMESPACE, NAME, "http"))

    async with crowd(url, "trickle", TRICKLE_AGENTS, TRICKLE_PAUSE_S) as trickle:
        step = time.monotonic()
        async with crowd(url, "load", LOAD_AGENTS) as load:

            async def scaled_up() -> bool:
                node.check()
                return await replicas() > 1

            await waiting.until(scaled_up, SCALE_DEADLINE_S, "scale-up", POLL_S)
            decided_s = time.monotonic() - step
            peak = await replicas()

            async def all_serving() -> bool:
                return serving() >= peak

            await waiting.until(all_serving, SCALE_DEADLINE_S, f"{peak} pods serving", POLL_S)
            serving_s = time.monotonic() - step
            up_columns = await _shown(plane, lambda replicas: replicas == peak)
            shown_up_s = time.monotonic() - step
        fall = time.monotonic()

        async def scaled_down() -> bool:
            node.check()
            return await replicas() < peak and serving() < peak

        await waiting.until(scaled_down, SCALE_DEADLINE_S, "scale-down", POLL_S)
        shrunk_s = time.monotonic() - fall
        down_columns = await _shown(plane, lambda replicas: replicas < peak)
        shown_down_s = time.monotonic() - fall

        # Agents keep speaking until the processes of the pods being removed are gone: drains over.
        removed = await _terminating(admin)

        async def drained() -> bool:
            return not removed & {name for _, name in node.agent.pod_names()}

        await waiting.until(drained, SCALE_DEADLINE_S, "drains to finish", POLL_S)
        drained_s = time.monotonic() - fall
    return CycleFigures(
        idle_percent=idle,
        decided_s=decided_s,
        serving_s=serving_s,
        peak=peak,
        shrunk_s=shrunk_s,
        drained_s=drained_s,
        up_columns=up_columns,
        shown_up_s=shown_up_s,
        down_columns=down_columns,
        shown_down_s=shown_down_s,
        load=load,
        trickle=trickle,
    )


async def _terminating(admin: httpx.AsyncClient) -> set[str]:
    """The backend's pods that have a deletionTimestamp (the node agent drains them)."""
    path = f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app.kubernetes.io/instance={NAME}"
    pods = (await _get(admin, path)).get("items") or ()
    return {pod["metadata"]["name"] for pod in pods if pod["metadata"].get("deletionTimestamp")}


async def _shown(plane: ControlPlane, wanted: Callable[[int], bool]) -> dict[str, str]:
    """`kubectl get ttsb` once its REPLICAS column satisfies `wanted` (status follows on probe ticks)."""

    async def columns() -> dict[str, str] | None:
        found = await asyncio.to_thread(ttsb_columns, plane, NAMESPACE, NAME)
        return found if found.get("REPLICAS", "").isdigit() and wanted(int(found["REPLICAS"])) else None

    shown: dict[str, str] = await waiting.until(
        columns, SCALE_DEADLINE_S, "kubectl get ttsb showing it", POLL_S
    )
    return shown


@contextlib.contextmanager
def operator(plane: ControlPlane, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`ttsfleet operator` for the namespace, with the admin kubeconfig (RBAC is the tests' concern)."""
    env = {**os.environ, "KUBECONFIG": str(plane.admin_kubeconfig)}
    env.pop("PYTHONPATH", None)
    with (workdir / "operator.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ttsfleet", "operator", "--namespace", NAMESPACE, "--metrics-port", "0"],
            env=env,
            cwd="/",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(20)


async def _run(workdir: Path) -> CycleFigures:
    with (
        running_control_plane(workdir / "control-plane") as plane,
        running_metrics_server(plane, workdir / "metrics-server"),
        processes.emulator(workdir) as upstream,
    ):
        provisioning.apply_crds(plane, ROOT / "crds")
        provisioning.create_namespaces(plane, (NAMESPACE,))
        with operator(plane, workdir):
            ws_url = f"ws://127.0.0.1:{upstream.port}"
            async with (
                stack.running_node(plane, workdir / "node", NODE, ws_url) as node,
                httpx.AsyncClient(base_url=plane.server, verify=plane.admin_tls(), timeout=10) as admin,
            ):
                for path, body in (
                    (
                        f"/api/v1/namespaces/{NAMESPACE}/secrets",
                        manifests.secret("deepgram", "api-key", processes.DEEPGRAM_KEY),
                    ),
                    (f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends", autoscaled_backend()),
                ):
                    (await admin.post(path, json=body)).raise_for_status()
                figures = await load_cycle(plane, node, admin)
                await admin.delete(f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends/{NAME}")
                return figures


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ttsfleet-hpa-cycle-") as scratch:
        figures = asyncio.run(_run(Path(scratch)))
    print(figures.describe())
    for lost in (*figures.load.lost, *figures.trickle.lost):
        print(f"LOST: {lost}")
    return 1 if figures.load.lost or figures.trickle.lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
