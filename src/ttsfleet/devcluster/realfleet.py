"""The local fleet on the real control plane: what `dev up` assembles when the programs are built.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler (`controlplane/launcher.py`); the CRDs
from `crds/`; the fleet's namespaces held to the `restricted` Pod Security Standard; the operator as a
process acting as the chart's ServiceAccount with the chart's RBAC (never as an admin); a node agent
running the scheduled pods as processes and a Service proxy (`nodeagent/stack.py`); the Deepgram
emulator; metrics-server when `make metrics-server` built it (HPAs and `kubectl top` read it). The
operator reaches pods through the agent's pod-network table (pod IPs do not route here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from ttsfleet.devcluster import fleet, ports, processes, runner
from ttsfleet.devcluster.controlplane import binaries, chart, kubeconfigs, provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane, running_control_plane
from ttsfleet.devcluster.metricsserver import build as metrics_server_build
from ttsfleet.devcluster.metricsserver.running import running_metrics_server
from ttsfleet.devcluster.nodeagent import stack

logger = logging.getLogger(__name__)

NODE_NAME = "ttsfleet-local"
RELEASE, RELEASE_NAMESPACE = "ttsfleet", "ttsfleet-system"
# The operator's namespace; backends' namespaces come from their manifests (examples/ labels `voice`
# `restricted`).
FLEET_NAMESPACES = (RELEASE_NAMESPACE,)
CRDS = binaries.MODULE_DIR.parent / "crds"
# The chart in cluster mode; one operator, so no peering (`--standalone`, as the chart then passes); with
# `rbac.keyRotation`, so that a backend with `spec.keyManagement` can have its key rotated here (without
# it the operator may not write the minted key into the key Secret: each install is refused with 403).
CHART_VALUES = ("operator.peering.enabled=false", "rbac.keyRotation=true")


def _fresh_directory(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)  # a fresh cluster every time: etcd state is throw-away
    workdir.mkdir(parents=True)


@contextlib.asynccontextmanager
async def _control_plane(workdir: Path) -> AsyncIterator[ControlPlane]:
    """The launcher's blocking start and stop, off the event loop (pods keep being served meanwhile)."""
    await asyncio.to_thread(_fresh_directory, workdir)
    manager = running_control_plane(workdir)
    plane = await asyncio.to_thread(manager.__enter__)
    try:
        yield plane
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def metrics_server_note() -> str | None:
    """The line `dev up` says when metrics-server is not built (HPAs then lack CPU and memory); else None."""
    try:
        metrics_server_build.locate()
    except metrics_server_build.MissingMetricsServer:
        return (
            "metrics-server is not built: HPAs will report missing resource metrics "
            "(run `make metrics-server` for them and `kubectl top`)"
        )
    return None


@contextlib.asynccontextmanager
async def _metrics_server(plane: ControlPlane, workdir: Path) -> AsyncIterator[None]:
    """metrics-server when it is built (its blocking start and stop off the event loop); else the note."""
    note = metrics_server_note()
    if note is not None:
        logger.warning("%s", note)
        yield
        return
    manager = running_metrics_server(plane, workdir)
    await asyncio.to_thread(manager.__enter__)
    try:
        yield
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def _provision(plane: ControlPlane, state_dir: Path) -> Path:
    """CRDs, namespaces, the chart's RBAC; the operator's ServiceAccount kubeconfig."""
    provisioning.apply_crds(plane, CRDS)
    provisioning.create_namespaces(plane, FLEET_NAMESPACES)
    manifests = chart.operator_rbac(chart.find_helm(), RELEASE, RELEASE_NAMESPACE, CHART_VALUES, state_dir)
    return chart.install_operator_identity(plane, manifests, state_dir / "operator.kubeconfig")


class _NodeView:
    """The node agent's pods and the proxy's Services, as the live `dev up` screen shows them."""

    def __init__(self, node: stack.Node) -> None:
        self._node = node

    def snapshot(self) -> list[runner.PodSnapshot]:
        found = []
        for namespace, name in self._node.agent.pod_names():
            process = self._node.agent.process_of(namespace, name)
            if process is not None:
                found.append(
                    runner.PodSnapshot(
                        namespace=namespace,
                        name=name,
                        deployment=name.rsplit("-", 2)[0],
                        port=process.port,
                        phase=process.phase.value,
                        ready=process.ready,
                        pid=process.pid,
                        restarts=process.restarts,
                    )
                )
        return found

    def service_urls(self) -> dict[str, str]:
        return self._node.proxy.service_urls()


async def run_real_fleet(options: fleet.FleetOptions, stop: asyncio.Event, on_ready: fleet.OnReady) -> None:
    """Bring the fleet up on the real control plane, call `on_ready`, run until `stop`, take it down."""
    state_dir = fleet.prepare_state_dir(options.state_dir)
    logs = state_dir / "logs"
    pod_network = state_dir / "pod-network.json"
    pod_network.unlink(missing_ok=True)
    emulator: asyncio.subprocess.Process | None = None
    operator: asyncio.subprocess.Process | None = None
    try:
        async with _control_plane(state_dir / "controlplane") as plane:
            operator_kubeconfig = await asyncio.to_thread(_provision, plane, state_dir)
            kubeconfig = kubeconfigs.write_certificate(
                state_dir / "kubeconfig",
                server=plane.server,
                ca=plane.credentials.ca.certificate,
                user="admin",
                pair=plane.credentials.admin,
            )
            upstream_url: str | None = None
            if not os.environ.get("DEEPGRAM_API_KEY"):
                emulator, upstream_url = await processes.start_emulator(
                    ports.free_port(), options.emulator_args, logs / "emulator.log"
                )
            async with (
                _metrics_server(plane, state_dir / "metrics-server"),
                stack.running_node(
                    plane,
                    state_dir,
                    NODE_NAME,
                    upstream_url,
                    pod_network_file=pod_network,
                    services_file=state_dir / "services.json",
                ) as node,
            ):
                argv = fleet.operator_command(
                    "--standalone",
                    "--operator-namespace",
                    RELEASE_NAMESPACE,
                    "--pod-network-file",  # pod IPs do not route here: the agent's table says where
                    str(pod_network),
                )
                try:
                    if options.with_operator:
                        operator = await processes.spawn(
                            argv, logs / "operator.log", {"KUBECONFIG": str(operator_kubeconfig)}
                        )
                    state = fleet.record_state(
                        state_dir,
                        plane.server,
                        kubeconfig,
                        upstream_url,
                        (emulator, operator),
                        argv,
                        control_plane="real",
                        ca_file=str(plane.credentials.ca.certificate),
                        client_certificate=str(plane.credentials.admin.certificate),
                        client_key=str(plane.credentials.admin.key),
                        kubectl=str(plane.programs.kubectl),
                        operator_kubeconfig=str(operator_kubeconfig),
                        pod_network_file=str(pod_network),
                    )
                    on_ready(state, _NodeView(node))
                    stopping = asyncio.create_task(stop.wait(), name="stop signal")
                    await asyncio.wait({stopping, *node.tasks}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                    node.check()
                finally:
                    # First, so it does not re-create what is being taken down; then the node drains.
                    await processes.stop(operator)
    finally:
        await processes.stop(emulator)
        fleet.forget_state(state_dir)
