"""What `ttsfleet dev up` and `dev status` show: rich tables of the fleet's processes, pods and Services."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table

from ttsfleet.devcluster import endpoints
from ttsfleet.devcluster.fleet import FleetState, PodsView
from ttsfleet.devcluster.runner import PodSnapshot


def summary(state: FleetState) -> str:
    """A few lines saying where everything is."""
    upstream = state.upstream_url or "the URL in each backend's config (DEEPGRAM_API_KEY is set)"
    lines = [
        f"local fleet up (pid {state.pid})",
        f"  control     {_control_plane(state)}",
        f"  API         {state.api_url}",
        f"  kubeconfig  {state.kubeconfig}   (export KUBECONFIG=$(ttsfleet dev kubeconfig))",
        f"  upstream    {upstream}",
        f"  operator    {'pid ' + str(state.operator_pid) if state.operator_pid else 'not running'}",
        f"  services    {state.services_file}",
    ]
    return "\n".join(lines)


def _control_plane(state: FleetState) -> str:
    if state.control_plane == "real":
        return "real Kubernetes control plane (etcd, kube-apiserver, controller manager, scheduler)"
    return "embedded API (quick start; `make controlplane` builds the real one)"


def pods_table(pods: Sequence[PodSnapshot]) -> Table:
    """One row per pod process."""
    table = Table(title="pods", title_justify="left")
    for column in ("namespace", "pod", "port", "phase", "ready", "pid", "restarts"):
        table.add_column(column)
    for pod in pods:
        table.add_row(
            pod.namespace,
            pod.name,
            str(pod.port),
            pod.phase,
            "yes" if pod.ready else "no",
            str(pod.pid or "-"),
            str(pod.restarts),
        )
    return table


def services_table(services: Mapping[str, str]) -> Table:
    """Where each Service answers locally."""
    table = Table(title="services", title_justify="left")
    table.add_column("backend")
    table.add_column("local address")
    for name, url in sorted(services.items()):
        table.add_row(name, url)
    return table


def _condition(body: Mapping[str, Any], kind: str) -> str:
    for condition in (body.get("status") or {}).get("conditions") or ():
        if condition.get("type") == kind:
            return f"{condition.get('status')} ({condition.get('reason', '')})"
    return "-"


def status_tables(state: FleetState, view: Mapping[str, Any], services: Mapping[str, str]) -> RenderableType:
    """`dev status`: backends, deployments, pods (from the API) and Services."""
    backends = Table(title="ttsbackends", title_justify="left")
    for column in ("namespace", "name", "ready", "replicas", "endpoint"):
        backends.add_column(column)
    for body in view["backends"]:
        status = body.get("status") or {}
        backends.add_row(
            body["metadata"]["namespace"],
            body["metadata"]["name"],
            _condition(body, "Ready"),
            str(status.get("replicas", "-")),
            str(status.get("endpoint", "-")),
        )
    deployments = Table(title="deployments", title_justify="left")
    for column in ("namespace", "name", "ready", "up-to-date", "available", "progressing"):
        deployments.add_column(column)
    for body in view["deployments"]:
        status = body.get("status") or {}
        deployments.add_row(
            body["metadata"]["namespace"],
            body["metadata"]["name"],
            f"{status.get('readyReplicas', 0)}/{body['spec'].get('replicas', 1)}",
            str(status.get("updatedReplicas", 0)),
            str(status.get("availableReplicas", 0)),
            _condition(body, "Progressing"),
        )
    pods = Table(title="pods", title_justify="left")
    for column in ("namespace", "name", "address", "ready", "terminating"):
        pods.add_column(column)
    for body in view["pods"]:
        metadata = body["metadata"]
        local_port = (metadata.get("annotations") or {}).get(endpoints.PORT_ANNOTATION)
        pods.add_row(
            metadata["namespace"],
            metadata["name"],
            f"127.0.0.1:{local_port}" if local_port else str((body.get("status") or {}).get("podIP", "-")),
            _condition(body, "Ready"),
            "yes" if metadata.get("deletionTimestamp") else "no",
        )
    return Group(summary(state), backends, deployments, pods, services_table(services))


class LiveDisplay:
    """The foreground `dev up` screen: started once the fleet is up, refreshed by rich's own thread."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None

    def __call__(self, state: FleetState, runner: PodsView) -> None:
        def render() -> RenderableType:
            try:
                return Group(
                    summary(state), pods_table(runner.snapshot()), services_table(runner.service_urls())
                )
            except RuntimeError:  # the runner changed its tables while rich read them: next refresh
                return summary(state)

        self._live = Live(get_renderable=render, console=self._console, refresh_per_second=1)
        self._live.start()

    def stop(self) -> None:
        """Leave the last screen in place."""
        if self._live is not None:
            self._live.stop()


def live_display(console: Console) -> LiveDisplay:
    """The on-ready hook of a foreground `dev up`."""
    return LiveDisplay(console)
