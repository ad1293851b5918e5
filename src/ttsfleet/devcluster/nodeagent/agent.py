"""The node agent: registers a Node, keeps its Lease, and runs the pods the scheduler binds to it.

The kubelet's loop, shrunk to what a machine without containers can do: pods bound to this node (a
field-selected watch, as the Node authorizer allows) become local processes (`devcluster/pods.py`) with
their ConfigMap and Secret volumes written into the pod's directory (`devcluster/volumes.py`) and
refreshed every `volume_refresh_s`; status goes back through `pods/status`; a deleted pod gets preStop,
SIGTERM and its grace period, then SIGKILL, and only then is removed (grace 0, guarded by its UID).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttsfleet.devcluster import kubeapi, pods, ports, tasks, volumes
from ttsfleet.devcluster.nodeagent import objects, resourcemetrics

logger = logging.getLogger(__name__)

NODES = kubeapi.Resource("v1", "nodes")
LEASES = kubeapi.Resource("coordination.k8s.io/v1", "leases")
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """The node's name, its pod CIDR, where pods' files live, and the agent's schedule."""

    node_name: str
    state_dir: Path
    pod_cidr: str = "10.244.0.0/24"
    lease_renew_s: float = 10.0
    status_report_s: float = 60.0
    # A pass runs on every watched change and at least this often (probe results, restarts).
    sync_s: float = 0.5
    # The kubelet re-reads mounted ConfigMaps and Secrets on its sync period (about a minute); shorter here.
    volume_refresh_s: float = 2.0
    probe_period_cap_s: float = 1.0
    # Variables every pod gets on top of its own (the local fleet's upstream, for instance).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Where the pod-network table goes (pod IP and port → loopback port), replaced atomically on every
    # change, for processes that dial pod IPs (the operator's /statusz probes); None publishes nothing.
    pod_network_file: Path | None = None
    # With TLS, the agent serves the kubelet's /metrics/resource (for metrics-server) on the port the
    # Node reports in status.daemonEndpoints.
    kubelet_tls: ssl.SSLContext | None = None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class _Running:
    """A pod the agent runs: its process, its address and what it last wrote."""

    uid: str
    process: pods.PodProcess
    pod_ip: str
    launched: bool = False
    refreshed_at: float = 0.0
    written_status: dict[str, Any] | None = None
    stopping: asyncio.Task[None] | None = None


@dataclass
class NodeAgent:
    """Run with `await agent.run()` until cancelled; its pods are stopped gracefully on the way out."""

    api: kubeapi.KubeApi
    settings: AgentSettings
    addresses: objects.PodAddresses = field(init=False)
    _bound: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _running: dict[Key, _Running] = field(default_factory=dict)
    _synced: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _resource_metrics: resourcemetrics.ResourceMetricsServer | None = None

    def __post_init__(self) -> None:
        self.addresses = objects.PodAddresses(self.settings.pod_cidr)

    @property
    def name(self) -> str:
        return self.settings.node_name

    def process_of(self, namespace: str, name: str) -> pods.PodProcess | None:
        """The process behind a pod this node runs (tests look at pids and readiness)."""
        running = self._running.get((namespace, name))
        return running.process if running else None

    def pod_names(self) -> list[Key]:
        """Every pod with a process here, terminating ones included."""
        return sorted(self._running)

    def running_containers(self) -> list[resourcemetrics.PodProcessRef]:
        """Each pod process running now, for the resource metrics endpoint."""
        return [
            resourcemetrics.PodProcessRef(key[0], key[1], str(r.process.container.get("name", "")), pid)
            for key, r in self._running.items()
            if (pid := r.process.pid) is not None and r.process.phase is pods.Phase.RUNNING
        ]

    def wake(self) -> None:
        """Ask for a sync pass soon."""
        self._wake.set()

    async def run(self) -> None:
        if self.settings.kubelet_tls is not None:
            self._resource_metrics = resourcemetrics.ResourceMetricsServer(
                self.settings.kubelet_tls, self.running_containers, lambda: int(time.time() * 1000)
            )
            await self._resource_metrics.start()
        await self.register()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._heartbeat(), name="lease")
                group.create_task(self._watch_pods(), name="watch pods")
                group.create_task(self._sync_forever(), name="sync")
        finally:
            await asyncio.shield(self.stop())
            if self._resource_metrics is not None:
                await self._resource_metrics.close()

    async def stop(self) -> None:
        """Stop every pod's process (preStop, SIGTERM, grace); the Pods stay for the next agent."""
        await asyncio.gather(*(r.process.terminate() for r in self._running.values()), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the Node and its Lease --------------------------------------------------------------------

    async def register(self) -> None:
        """Create the Node (or take over an existing one of this name) and report it Ready."""
        try:
            await self.api.create(NODES, None, objects.node_body(self.name, self.settings.pod_cidr))
        except kubeapi.ApiError as error:
            if error.status != 409:
                raise
        await self._report_status()
        await self._renew_lease()

    async def _report_status(self) -> None:
        node = await self.api.get(NODES, None, self.name)
        previous = (node or {}).get("status")
        status = objects.node_status(self.name, _now(), previous)
        if self._resource_metrics is not None:
            status |= resourcemetrics.daemon_endpoints(self._resource_metrics.port)
        await self.api.patch(NODES, None, self.name, {"status": status}, "status")

    async def _renew_lease(self) -> None:
        body = objects.lease_body(self.name, _now())
        try:
            await self.api.patch(LEASES, objects.LEASE_NAMESPACE, self.name, {"spec": body["spec"]})
        except kubeapi.ApiError as error:
            if error.status != 404:
                raise
            await self.api.create(LEASES, objects.LEASE_NAMESPACE, body)

    async def _heartbeat(self) -> None:
        reported = time.monotonic()
        while True:
            await asyncio.sleep(self.settings.lease_renew_s)  # the heartbeat's schedule, not a wait
            try:
                await self._renew_lease()
                if time.monotonic() - reported >= self.settings.status_report_s:
                    await self._report_status()
                    reported = time.monotonic()
            except (kubeapi.ApiError, OSError) as error:
                logger.warning("node %s heartbeat failed: %s", self.name, error)

    # -- pods --------------------------------------------------------------------------------------

    async def _watch_pods(self) -> None:
        selector = {"fieldSelector": f"spec.nodeName={self.name}"}
        async for event in self.api.watch(kubeapi.PODS, selector):
            if event.type == "SYNCED":
                self._bound = {_key(body): body for body in event.snapshot}
                self._synced = True
            elif event.type == "DELETED":
                self._bound.pop(_key(event.object), None)
            else:
                self._bound[_key(event.object)] = event.object
            self.wake()

    async def _sync_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.sync_s):
                    await self._wake.wait()
            self._wake.clear()
            if not self._synced:
                continue
            try:
                await self.sync()
            except (kubeapi.ApiError, OSError) as error:
                logger.warning("node %s sync failed, retrying: %s", self.name, error)

    async def sync(self) -> None:
        """One pass over the pods bound here: start, refresh, report, stop."""
        for key, pod in list(self._bound.items()):
            running = self._running.get(key)
            if running is not None and running.uid != pod["metadata"]["uid"]:
                self._begin_stop(key, running, delete_uid=None)  # a new pod of the same name
                continue
            if pod["metadata"].get("deletionTimestamp"):
                if running is None:
                    await self._delete_pod(key, pod["metadata"]["uid"])
                else:
                    self._begin_stop(key, running, delete_uid=running.uid)
                continue
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            if running is None:
                running = self._admit(key, pod)
            if running.stopping is None:
                await self._refresh(key, pod, running)
        for key, running in list(self._running.items()):
            if key not in self._bound:
                self._begin_stop(key, running, delete_uid=None)

    def _admit(self, key: Key, pod: Mapping[str, Any]) -> _Running:
        spec = pod["spec"]
        container = spec["containers"][0]
        port = ports.free_port()
        pod_ip = self.addresses.assign(objects.container_ports(container), port)
        self._publish_pod_network()
        process = pods.PodProcess(
            namespace=key[0],
            name=key[1],
            template_hash=str((pod["metadata"].get("labels") or {}).get("pod-template-hash", "")),
            port=port,
            pod_dir=self.settings.state_dir / "pods" / key[0] / key[1],
            container=container,
            launch=pods.Launch((), {}, self.settings.state_dir),
            grace_s=float(spec.get("terminationGracePeriodSeconds", 30)),
            readiness=pods.probe_spec(container.get("readinessProbe"), self.settings.probe_period_cap_s),
            liveness=pods.probe_spec(container.get("livenessProbe"), self.settings.probe_period_cap_s),
            on_change=self._wake.set,
        )
        running = _Running(uid=str(pod["metadata"]["uid"]), process=process, pod_ip=pod_ip)
        self._running[key] = running
        logger.info("pod %s/%s admitted: %s, local port %d", key[0], key[1], pod_ip, port)
        return running

    def _publish_pod_network(self) -> None:
        target = self.settings.pod_network_file
        if target is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp")
        staging.write_text(json.dumps(self.addresses.table(), indent=2) + "\n")
        staging.replace(target)  # readers never see a half-written table

    async def _sources(
        self, namespace: str, refs: set[volumes.SourceRef]
    ) -> dict[volumes.SourceRef, dict[str, Any] | None]:
        """Each ConfigMap and Secret the pod uses, read one by one (what the Node authorizer allows)."""
        found: dict[volumes.SourceRef, dict[str, Any] | None] = {}
        for ref in refs:
            resource = kubeapi.SECRETS if ref.kind == "Secret" else kubeapi.CONFIGMAPS
            try:
                found[ref] = await self.api.get(resource, namespace, ref.name)
            except kubeapi.ApiError as error:
                if error.status != 403:  # the authorizer's graph may not know the pod yet
                    raise
                found[ref] = None
        return found

    async def _refresh(self, key: Key, pod: Mapping[str, Any], running: _Running) -> None:
        spec = pod["spec"]
        container = spec["containers"][0]
        now = time.monotonic()
        if not running.launched or now - running.refreshed_at >= self.settings.volume_refresh_s:
            running.refreshed_at = now
            refs = set(filter(None, map(volumes.volume_source, spec.get("volumes") or ())))
            refs |= _env_sources(container)
            sources = await self._sources(key[0], refs)
            missing, changed = volumes.materialise(
                running.process.pod_dir, spec.get("volumes") or (), sources
            )
            if changed and running.launched:
                logger.info("pod %s/%s: mounted files refreshed", *key)
            if not running.launched and not missing:
                body = {**pod, "status": {**(pod.get("status") or {}), "podIP": running.pod_ip}}
                running.process.launch = pods.launch_for(
                    body,
                    running.process.pod_dir,
                    running.process.port,
                    _lookup(sources),
                    self.settings.extra_env,
                    pods.host_environment(),
                )
                running.launched = True
                self._spawn(running.process.run(), f"pod {key[0]}/{key[1]}")
        process = running.process
        status = objects.pod_status(
            container=container,
            pod_ip=running.pod_ip,
            running=process.phase is pods.Phase.RUNNING,
            ready=process.ready and process.phase is pods.Phase.RUNNING,
            restarts=process.restarts,
            now=_now(),
            previous=running.written_status or pod.get("status"),
        )
        if status != running.written_status:
            try:
                await self.api.patch(kubeapi.PODS, key[0], key[1], {"status": status}, "status")
            except kubeapi.ApiError as error:
                if error.status not in (404, 409):
                    raise
                return
            running.written_status = status

    def _begin_stop(self, key: Key, running: _Running, delete_uid: str | None) -> None:
        if running.stopping is not None:
            return

        async def stop() -> None:
            await running.process.terminate()
            self.addresses.release(running.pod_ip)
            self._publish_pod_network()
            if self._running.get(key) is running:
                del self._running[key]
            if delete_uid is not None:
                await self._delete_pod(key, delete_uid)
            self.wake()

        running.stopping = asyncio.create_task(stop(), name=f"stop {key[0]}/{key[1]}")
        self._tasks.add(running.stopping)
        running.stopping.add_done_callback(self._tasks.discard)

    async def _delete_pod(self, key: Key, uid: str) -> None:
        """Remove a Pod whose process is gone: no grace left, and only the Pod this agent knew."""
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        with contextlib.suppress(kubeapi.ApiError):
            await self.api.delete_with(kubeapi.PODS, key[0], key[1], options)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        tasks.spawn(self._tasks, coroutine, name)


def _key(body: Mapping[str, Any]) -> Key:
    return (str(body["metadata"].get("namespace", "")), str(body["metadata"]["name"]))


def _env_sources(container: Mapping[str, Any]) -> set[volumes.SourceRef]:
    refs = set()
    for entry in container.get("env") or ():
        source = entry.get("valueFrom") or {}
        for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            if key in source:
                refs.add(volumes.SourceRef(kind, str(source[key]["name"])))
    return refs


def _lookup(
    sources: Mapping[volumes.SourceRef, Mapping[str, Any] | None],
) -> Callable[[str, str, str], str | None]:
    def lookup(kind: str, name: str, key: str) -> str | None:
        source = sources.get(volumes.SourceRef(kind, name))
        wrapper: dict[str, Any] = {"secret" if kind == "Secret" else "configMap": {}}
        files = volumes.volume_files(wrapper, source) if source else None
        return files[key].decode() if files and key in files else None

    return lookup
