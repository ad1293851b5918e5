"""metrics-server, built from its Go module, scrapes the node agent's kubelet-style /metrics/resource
and serves metrics.k8s.io through the real aggregator: `kubectl top` shows the gateway pods."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.controlplane.conftest import NAMESPACE
from tests.controlplane.test_controlplane_node import DEADLINE_S, apply_gateway, rolled_out
from tests.support.servers import ServerProcess
from tests.support.waiting import wait_until
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.metricsserver.running import MetricsServer
from ttsfleet.devcluster.nodeagent import stack

# A whole load cycle or a fleet of its own: longer than the suite-wide 120 s, bounded all the same.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NODE = "ttsfleet-metrics"
# Two scrapes at metrics-server's resolution (a CPU figure is a rate between them).
METRICS_DEADLINE_S = 90.0


async def kubelet_port(admin: httpx.AsyncClient, node: str) -> int:
    response = await admin.get(f"/api/v1/nodes/{node}")
    if response.status_code != 200:
        return 0
    endpoints = (response.json().get("status") or {}).get("daemonEndpoints") or {}
    return int((endpoints.get("kubeletEndpoint") or {}).get("Port") or 0)


def top_pods(plane: ControlPlane, namespace: str, selector: str, expected: int) -> list[list[str]] | None:
    """`kubectl top pods` rows (name, CPU, memory) once it lists `expected` pods."""
    try:
        out = plane.kubectl("top", "pods", "-n", namespace, "-l", selector)
    except RuntimeError:  # metrics not yet available for the pods: kubectl says so and fails
        return None
    rows = [line.split() for line in out.splitlines()[1:] if line.strip()]
    return rows if len(rows) == expected else None


@contextlib.asynccontextmanager
async def node_and_admin(
    plane: ControlPlane, state_dir: Path, node_name: str, upstream: str
) -> AsyncIterator[tuple[stack.Node, httpx.AsyncClient]]:
    """A node agent with its proxy, and an admin client; the Node is removed on the way out, so later
    tests on the shared control plane are not scheduled onto a node with no agent."""
    async with (
        stack.running_node(plane, state_dir, node_name, upstream) as node,
        httpx.AsyncClient(base_url=plane.server, verify=plane.admin_tls(), timeout=10) as admin,
    ):
        try:
            yield node, admin
        finally:
            await admin.delete(f"/api/v1/nodes/{node_name}")


async def test_kubectl_top_shows_the_pods_the_node_agent_runs(
    control_plane: ControlPlane, metrics_server: MetricsServer, emulator: ServerProcess, tmp_path: Path
) -> None:
    name = "gw-top"
    async with node_and_admin(control_plane, tmp_path / "node", NODE, emulator.ws_url) as (node, admin):
        try:
            port = await wait_until(lambda: kubelet_port(admin, NODE), DEADLINE_S, "the Node's kubelet port")
            assert port != 0
            await apply_gateway(admin, name, replicas=2)

            async def available() -> bool:
                node.check()
                return await rolled_out(admin, name, 2)

            await wait_until(available, DEADLINE_S, f"{name} available with 2 pods")
            rows = await wait_until(
                lambda: asyncio.to_thread(top_pods, control_plane, NAMESPACE, f"app={name}", 2),
                METRICS_DEADLINE_S,
                "kubectl top pods to list both pods",
            )
            for _, cpu, memory in rows:
                assert cpu.endswith("m"), rows
                assert int(memory.removesuffix("Mi")) > 10, rows  # a Python gateway's resident set
            assert NODE in control_plane.kubectl("top", "nodes")
        finally:
            await admin.delete(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}")
