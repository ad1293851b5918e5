"""A node on a running control plane: the node agent and the Service proxy, each with its own identity.

The agent acts as `system:node:<name>` in `system:nodes`, the proxy as `system:kube-proxy`: client
certificates signed by the cluster's CA under the names the Node authorizer, NodeRestriction and the
bootstrap RBAC policy (`system:node-proxier`) hold a kubelet and kube-proxy to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ttsfleet.devcluster import kubeapi
from ttsfleet.devcluster.controlplane import pki
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.nodeagent import objects, resourcemetrics
from ttsfleet.devcluster.nodeagent.agent import AgentSettings, NodeAgent
from ttsfleet.devcluster.runner import rest_url_of
from ttsfleet.devcluster.serviceproxy import DEFAULT_PROPAGATION_DELAY_S, ServiceProxy


@dataclass
class Node:
    """The running agent and proxy."""

    agent: NodeAgent
    proxy: ServiceProxy
    tasks: tuple[asyncio.Task[None], ...]

    def check(self) -> None:
        """Raise the agent's or the proxy's own error if either has stopped."""
        for task in self.tasks:
            if task.done():
                task.result()
                raise RuntimeError(f"{task.get_name()} ended")


@contextlib.asynccontextmanager
async def running_node(
    plane: ControlPlane,
    state_dir: Path,
    node_name: str,
    upstream_url: str | None,
    propagation_delay_s: float = DEFAULT_PROPAGATION_DELAY_S,
    *,
    pod_network_file: Path | None = None,
    services_file: Path | None = None,
) -> AsyncIterator[Node]:
    """Start agent and proxy; on exit stop them (the agent stops its pods' processes gracefully).
    `upstream_url` (ws://, the emulator) replaces the Deepgram URL in every pod's config; the agent
    publishes its pod-network table to `pod_network_file`, the proxy its Services to `services_file`."""
    extra_env = (
        {"TTSFLEET_UPSTREAM__URL": upstream_url, "TTSFLEET_UPSTREAM__REST_URL": rest_url_of(upstream_url)}
        if upstream_url
        else {}
    )
    node_pair = pki.issue_client(plane.credentials, "node", f"system:node:{node_name}", "system:nodes")
    proxy_pair = pki.issue_client(plane.credentials, "proxy", "system:kube-proxy")
    # The kubelet endpoint's serving certificate names the Node's InternalIP, which metrics-server dials.
    serving = pki.issue_serving(
        plane.credentials,
        f"kubelet-{node_name}",
        f"system:node:{node_name}",
        (node_name,),
        (objects.LOOPBACK,),
    )
    kubelet_tls = resourcemetrics.server_tls(
        serving.certificate, serving.key, plane.credentials.ca.certificate
    )
    settings = AgentSettings(
        node_name=node_name,
        state_dir=state_dir,
        extra_env=extra_env,
        pod_network_file=pod_network_file,
        kubelet_tls=kubelet_tls,
    )
    async with (
        kubeapi.KubeApi(plane.server, tls=plane.client_tls(node_pair)) as node_api,
        kubeapi.KubeApi(plane.server, tls=plane.client_tls(proxy_pair)) as proxy_api,
    ):
        agent = NodeAgent(node_api, settings)
        proxy = ServiceProxy(proxy_api, agent.addresses.local, propagation_delay_s, services_file)
        tasks = (
            asyncio.create_task(agent.run(), name="node agent"),
            asyncio.create_task(proxy.run(), name="service proxy"),
        )
        try:
            yield Node(agent, proxy, tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
