"""The node agent and the Service proxy on the real control plane.

A Deployment of real gateways is scheduled by the real kube-scheduler onto the agent's Node, runs as
local processes that turn Ready through their readiness probes, is published by the real EndpointSlice
controller, takes speech through the Service proxy, is rolled by the real Deployment controller and, once
deleted, collected by the real garbage collector with every process stopped.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.controlplane.conftest import NAMESPACE
from tests.devcluster.conftest import MERGE
from tests.devcluster.test_runner_pods import KEY, TOKEN, _config, _secret, gateway_deployment, service
from tests.support.cancelling import cancel_as_it_wakes
from tests.support.servers import ServerProcess
from tests.support.waiting import wait_until
from ttsfleet import client
from ttsfleet.devcluster import kubeapi
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.nodeagent import objects, stack
from ttsfleet.devcluster.nodeagent.agent import NodeAgent
from ttsfleet.devcluster.serviceproxy import ServiceProxy
from ttsfleet.protocol import Encoding, SpeakOptions

pytestmark = pytest.mark.slow

NODE = "ttsfleet-local"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"
REPLICA_SETS = f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"
DEADLINE_S = 90.0
# What the `restricted` Pod Security Standard of the fleet's namespace demands of every pod.
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


@dataclass
class Node:
    agent: NodeAgent
    proxy: ServiceProxy
    admin: httpx.AsyncClient
    check: Callable[[], None]


@contextlib.asynccontextmanager
async def running_node(plane: ControlPlane, state_dir: Path, upstream: str) -> AsyncIterator[Node]:
    async with (
        stack.running_node(plane, state_dir, NODE, upstream) as node,
        httpx.AsyncClient(base_url=plane.server, verify=plane.admin_tls(), timeout=10) as admin,
    ):
        try:
            yield Node(node.agent, node.proxy, admin, node.check)
        finally:
            # The control plane outlives this test: a Node left behind (NotReady, with no agent) would
            # take the scheduler's pods in later tests, which then never finish terminating.
            await admin.delete(f"/api/v1/nodes/{NODE}")


def restricted_gateway(name: str, replicas: int, revision: str = "1") -> dict[str, Any]:
    body = gateway_deployment(name, replicas, revision)
    spec = body["spec"]["template"]["spec"]
    spec["securityContext"] = POD_SECURITY
    spec["containers"][0]["securityContext"] = CONTAINER_SECURITY
    return body


async def apply_gateway(admin: httpx.AsyncClient, name: str, replicas: int) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-config"}}
    config_map["data"] = {"config.yaml": _config()}
    base = f"/api/v1/namespaces/{NAMESPACE}"
    for path, body in (
        (f"{base}/configmaps", config_map),
        (f"{base}/secrets", _secret(f"{name}-key", "api-key", KEY)),
        (f"{base}/secrets", _secret(f"{name}-tokens", "tokens", TOKEN + "\n")),
        (f"{base}/services", service(name)),
        (DEPLOYMENTS, restricted_gateway(name, replicas)),
    ):
        response = await admin.post(path, json=body)
        assert response.status_code == 201, response.text


async def rolled_out(admin: httpx.AsyncClient, name: str, replicas: int) -> bool:
    deployment = (await admin.get(f"{DEPLOYMENTS}/{name}")).json()
    status = deployment.get("status") or {}
    return bool(
        status.get("observedGeneration") == deployment["metadata"]["generation"]
        and status.get("replicas") == status.get("updatedReplicas") == replicas
        and status.get("availableReplicas") == replicas
    )


async def pods_of(admin: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    listed = (await admin.get(PODS, params={"labelSelector": f"app={name}"})).json()
    items: list[dict[str, Any]] = listed["items"]
    return items


async def ready_slice_addresses(admin: httpx.AsyncClient, name: str) -> set[str]:
    listed = (await admin.get(SLICES, params={"labelSelector": f"kubernetes.io/service-name={name}"})).json()
    return {
        address
        for body in listed["items"]
        if body["metadata"]["labels"].get("endpointslice.kubernetes.io/managed-by")
        == "endpointslice-controller.k8s.io"
        for endpoint in body.get("endpoints") or ()
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def speak(url: str) -> client.Utterance:
    options = SpeakOptions(model="aura-2-thalia-en", encoding=Encoding.LINEAR16, sample_rate=16000)
    async with client.SpeakClient(url, TOKEN, options) as session:
        return await session.speak("Hello from the real control plane.")


async def test_the_node_registers_ready_with_capacity_and_heartbeats_through_its_lease(
    control_plane: ControlPlane, emulator: ServerProcess, tmp_path: Path
) -> None:
    async with running_node(control_plane, tmp_path / "node", emulator.ws_url) as node:

        async def registered() -> bool:
            node.check()
            response = await node.admin.get(f"/api/v1/nodes/{NODE}")
            if response.status_code != 200:
                return False
            conditions = (response.json().get("status") or {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        await wait_until(registered, DEADLINE_S, f"Node {NODE} Ready")
        body = (await node.admin.get(f"/api/v1/nodes/{NODE}")).json()
        assert int(body["status"]["allocatable"]["pods"]) == objects.MAX_PODS
        assert body["spec"]["podCIDR"] == "10.244.0.0/24"
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}"

        async def heartbeat() -> bool:
            # The Node is reported Ready before the first Lease renewal is written.
            return (await node.admin.get(lease_path)).status_code == 200

        await wait_until(heartbeat, DEADLINE_S, f"the Lease of Node {NODE}")
        lease = (await node.admin.get(lease_path)).json()
        assert lease["spec"]["holderIdentity"] == NODE
        # NodeRestriction: the node's own identity cannot touch another Node.
        other = objects.node_body("someone-else", "10.245.0.0/24")
        with pytest.raises(kubeapi.ApiError) as refused:
            await node.agent.api.create(kubeapi.Resource("v1", "nodes"), None, other)
        assert refused.value.status == 403


async def test_a_deployment_runs_on_the_node_serves_through_the_proxy_rolls_and_is_collected(
    control_plane: ControlPlane, emulator: ServerProcess, tmp_path: Path
) -> None:
    name = "gw-node"
    async with running_node(control_plane, tmp_path / "node", emulator.ws_url) as node:
        admin = node.admin
        await apply_gateway(admin, name, replicas=2)

        async def available() -> bool:
            node.check()
            return await rolled_out(admin, name, 2)

        await wait_until(available, DEADLINE_S, f"{name} available with 2 pods")

        first = await pods_of(admin, name)
        assert len(first) == 2
        for pod in first:
            assert pod["spec"]["nodeName"] == NODE  # bound by the real scheduler
            status = pod["status"]
            assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network("10.244.0.0/24")
            assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
            assert status["containerStatuses"][0]["restartCount"] == 0
            assert "running" in status["containerStatuses"][0]["state"]
        pod_ips = {pod["status"]["podIP"] for pod in first}
        await wait_until(
            lambda: _equals(ready_slice_addresses(admin, name), pod_ips), DEADLINE_S, "the real slices"
        )

        await wait_until(lambda: node.proxy.address(NAMESPACE, name, "http") is not None, 10, "a listener")
        await wait_until(
            lambda: {a for a, _ in node.proxy.endpoints(NAMESPACE, name, "http")} == pod_ips, 10, "the proxy"
        )
        host, port = node.proxy.address(NAMESPACE, name, "http") or ("", 0)
        utterance = await speak(f"ws://{host}:{port}")
        assert len(utterance.audio) > 1000
        # Connections spread over both pods (random per connection, as kube-proxy).
        served = set()
        # A fresh connection per request: the proxy chooses per connection, not per request.
        async with httpx.AsyncClient(timeout=5, headers={"Connection": "close"}) as http:
            for _ in range(40):
                served.add((await http.get(f"http://{host}:{port}/statusz")).json()["pod"])
                if len(served) == 2:
                    break
        assert served == {pod["metadata"]["name"] for pod in first}

        # A killed container is restarted and its restart reported; a rotated Secret reaches the files.
        victim = first[0]["metadata"]["name"]
        os.kill(_pid(node, first[0]), signal.SIGKILL)

        async def restarted() -> bool:
            pod = (await admin.get(f"{PODS}/{victim}")).json()
            container = pod["status"]["containerStatuses"][0]
            return bool(container["restartCount"] == 1 and container["ready"])

        await wait_until(restarted, DEADLINE_S, "the restart reported and the pod Ready again")
        rotated = {"data": _secret(f"{name}-key", "api-key", "rotated-key")["data"]}
        secret = f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}-key"
        (await admin.patch(secret, json=rotated, headers=MERGE)).raise_for_status()
        process = node.agent.process_of(NAMESPACE, victim)
        assert process is not None
        key_file = process.pod_dir / "volumes" / "key" / "key"
        await wait_until(
            lambda: key_file.read_text() == "rotated-key", 30, "the rotated key in the pod's file"
        )

        # A rollout by the real Deployment controller replaces both pods; their processes stop.
        old_pids = [_pid(node, pod) for pod in first]
        patch = {"spec": {"template": {"metadata": {"annotations": {"revision": "2"}}}}}
        (await admin.patch(f"{DEPLOYMENTS}/{name}", json=patch, headers=MERGE)).raise_for_status()

        async def replaced() -> bool:
            names = {pod["metadata"]["name"] for pod in await pods_of(admin, name)}
            return await rolled_out(admin, name, 2) and not names & {p["metadata"]["name"] for p in first}

        await wait_until(replaced, DEADLINE_S, "the rollout to replace both pods")
        await wait_until(lambda: not any(map(alive, old_pids)), 30, "the old pods' processes to exit")
        second = await pods_of(admin, name)
        assert len((await admin.get(REPLICA_SETS)).json()["items"]) == 2
        second_ips = {pod["status"]["podIP"] for pod in second}
        await wait_until(
            lambda: _equals(ready_slice_addresses(admin, name), second_ips), DEADLINE_S, "slices moved"
        )
        await wait_until(
            lambda: {a for a, _ in node.proxy.endpoints(NAMESPACE, name, "http")} == second_ips, 10, "proxy"
        )
        utterance = await speak(f"ws://{host}:{port}")
        assert len(utterance.audio) > 1000

        # Deleting the Deployment: the real garbage collector removes ReplicaSets and pods.
        new_pids = [_pid(node, pod) for pod in second]
        (await admin.delete(f"{DEPLOYMENTS}/{name}")).raise_for_status()

        async def collected() -> bool:
            return not await pods_of(admin, name) and not (await admin.get(REPLICA_SETS)).json()["items"]

        await wait_until(collected, DEADLINE_S, "ReplicaSets and pods collected")
        assert not any(map(alive, new_pids))
        assert node.agent.pod_names() == []


def _pid(node: Node, pod: dict[str, Any]) -> int:
    process = node.agent.process_of(NAMESPACE, pod["metadata"]["name"])
    assert process is not None and process.pid is not None
    return process.pid


async def _equals(found: Any, expected: set[str]) -> bool:
    return bool(await found == expected)


async def test_a_cancel_that_meets_a_wake_up_still_stops_the_agent(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    # The runner's case (tests/devcluster/test_runner_cancellation.py) for the agent's sync loop.
    name = "ttsfleet-cancelled"
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    admin = httpx.AsyncClient(base_url=control_plane.server, verify=control_plane.admin_tls(), timeout=10)
    async with admin, stack.running_node(control_plane, tmp_path / "node", name, None) as node:
        try:

            async def heartbeat() -> bool:  # written once registered, as the agent's loops start
                return (await admin.get(lease_path)).status_code == 200

            await wait_until(heartbeat, DEADLINE_S, f"the Lease of Node {name}")
            await cancel_as_it_wakes(node.tasks[0], node.agent.wake)
        finally:
            await admin.delete(f"/api/v1/nodes/{name}")
