"""The pod runner: the kubelet, the Deployment controller and kube-proxy of the local fleet, in one loop.

It watches Deployments, Pods, Services, Secrets and ConfigMaps, keeps one local process per pod
(`pods.py`), rolls templates by `rollout.plan`, refreshes mounted files when their source changes, and
writes Pods, Deployment status and EndpointSlices back to the API. Each Service gets a loopback
balancer (`balancer.py`), listed in `services.json` for clients. One reconcile pass at a time, run on
every change and every `resync_s`; everything it writes is compared with what it wrote before.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from ttsfleet.devcluster import balancer, endpoints, kubeapi, pods, ports, rollout, tasks, volumes

logger = logging.getLogger(__name__)
Key = tuple[str, str]
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """Where the runner keeps pods' files and publishes Services, and where pods find upstream."""

    state_dir: Path
    # The pods' upstream (the emulator) as a ws:// URL; None keeps what the config says (real Deepgram).
    upstream_url: str | None = None
    # Probe periods are capped so local rollouts take seconds, not the template's minutes.
    probe_period_cap_s: float = 1.0
    # A reconcile pass runs at least this often (minReadySeconds, progress deadlines).
    resync_s: float = 0.5
    # How long a pod that stopped being a ready endpoint still gets new Service connections (as
    # kube-proxy applies EndpointSlice changes late); rollouts must survive it, as on a cluster.
    service_propagation_delay_s: float = balancer.DEFAULT_PROPAGATION_DELAY_S

    @property
    def services_file(self) -> Path:
        """`{"<name>.<namespace>": "ws://127.0.0.1:PORT"}` for every Service."""
        return self.state_dir / "services.json"

    @property
    def pods_dir(self) -> Path:
        """Per-pod directories: volumes, tmp and `container.log`."""
        return self.state_dir / "pods"


@dataclass(frozen=True, slots=True)
class PodSnapshot:
    """One pod as `dev status` and tests see it."""

    namespace: str
    name: str
    deployment: str
    port: int
    phase: str
    ready: bool
    pid: int | None
    restarts: int


def rest_url_of(ws_url: str) -> str:
    """The http(s) URL on the same host as a ws(s) URL."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def _key(body: Mapping[str, Any]) -> Key:
    return (str(body["metadata"].get("namespace", "")), str(body["metadata"]["name"]))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class _Pod:
    """A pod the runner owns: its API body, its deployment and (once volumes exist) its process."""

    body: dict[str, Any]
    deployment: Key
    process: pods.PodProcess
    launched: bool = False
    terminating: bool = False
    written_status: dict[str, Any] | None = None


@dataclass
class Runner:
    """Run it with `await runner.run()` (until cancelled); `stop()` terminates every pod gracefully."""

    WATCHED: ClassVar[dict[str, kubeapi.Resource]] = {
        "deployments": kubeapi.DEPLOYMENTS,
        "pods": kubeapi.PODS,
        "services": kubeapi.SERVICES,
        "secrets": kubeapi.SECRETS,
        "configmaps": kubeapi.CONFIGMAPS,
    }

    api: kubeapi.KubeApi
    settings: RunnerSettings
    _objects: dict[str, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    _pods: dict[Key, _Pod] = field(default_factory=dict)
    _balancers: dict[Key, balancer.Balancer] = field(default_factory=dict)
    _slices: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _statuses: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _progress_started: dict[Key, datetime.datetime] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _synced: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _published: dict[str, str] | None = None

    # -- running -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch and reconcile until cancelled; pods are stopped gracefully on the way out."""
        self.settings.pods_dir.mkdir(parents=True, exist_ok=True)
        watched = self.WATCHED
        self._objects = {name: {} for name in watched}
        try:
            async with asyncio.TaskGroup() as group:
                for name, resource in watched.items():
                    group.create_task(self._watch(name, resource), name=f"watch {name}")
                group.create_task(self._reconcile_forever(), name="reconcile")
        finally:
            await asyncio.shield(self.stop())

    async def stop(self) -> None:
        """Terminate every pod (preStop, SIGTERM, grace) and close the balancers."""
        stopping = [pod.process.terminate() for pod in self._pods.values()]
        await asyncio.gather(*stopping, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for lb in self._balancers.values():
            await lb.close()
        self._balancers.clear()

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        tasks.spawn(self._tasks, coroutine, name)

    def wake(self) -> None:
        """Ask for a reconcile pass soon."""
        self._wake.set()

    async def _watch(self, name: str, resource: kubeapi.Resource) -> None:
        cache = self._objects.setdefault(name, {})
        async for event in self.api.watch(resource):
            if event.type == "SYNCED":
                cache.clear()
                cache.update({_key(body): body for body in event.snapshot})
                self._synced.add(name)
            elif event.type == "DELETED":
                cache.pop(_key(event.object), None)
            else:
                cache[_key(event.object)] = event.object
            self.wake()

    async def _reconcile_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.resync_s):
                    await self._wake.wait()
            self._wake.clear()
            if len(self._synced) < len(self.WATCHED):
                continue
            try:
                await self.reconcile()
            except (kubeapi.ApiError, OSError) as error:
                logger.warning("reconcile failed, retrying: %s", error)

    # -- views -------------------------------------------------------------------------------------

    def snapshot(self) -> list[PodSnapshot]:
        """Every pod the runner owns, sorted by namespace and name."""
        return [
            PodSnapshot(
                namespace=key[0],
                name=key[1],
                deployment=pod.deployment[1],
                port=pod.process.port,
                phase=pod.process.phase.value,
                ready=pod.process.ready and not pod.terminating,
                pid=pod.process.pid,
                restarts=pod.process.restarts,
            )
            for key, pod in sorted(self._pods.items())
        ]

    def service_urls(self) -> dict[str, str]:
        """`{"<name>.<namespace>": "ws://127.0.0.1:PORT"}`."""
        return {f"{key[1]}.{key[0]}": lb.url for key, lb in sorted(self._balancers.items())}

    # -- reconciling -------------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """One pass: deployments, pod lifecycles, volumes, statuses, services."""
        deployments = self._objects.get("deployments", {})
        for key, deployment in list(deployments.items()):
            if not deployment["metadata"].get("deletionTimestamp"):
                await self._reconcile_deployment(key, deployment)
        for pod_key, pod in list(self._pods.items()):
            owner = deployments.get(pod.deployment)
            api_pod = self._objects.get("pods", {}).get(pod_key)
            owner_uid = pod.body["metadata"]["ownerReferences"][0]["uid"]
            gone = owner is None or owner["metadata"].get("uid") != owner_uid
            deleted = api_pod is None or bool(api_pod["metadata"].get("deletionTimestamp"))
            if (gone or deleted) and not pod.terminating:
                await self._stop_pod(pod_key, pod)
        await self._release_orphans()
        for pod_key, pod in list(self._pods.items()):
            await self._refresh_pod(pod_key, pod)
        for key, deployment in list(deployments.items()):
            await self._write_deployment_status(key, deployment)
        await self._reconcile_services()

    def _views(self, deployment_key: Key, min_ready_s: float) -> list[rollout.PodView]:
        now = time.monotonic()
        return [
            rollout.PodView(
                name=key[1],
                template_hash=pod.process.template_hash,
                ready=pod.process.ready,
                available=pod.process.is_available(min_ready_s, now),
                created=pod.process.created,
            )
            for key, pod in self._pods.items()
            if pod.deployment == deployment_key and not pod.terminating
        ]

    async def _reconcile_deployment(self, key: Key, deployment: dict[str, Any]) -> None:
        strategy = rollout.strategy_of(deployment)
        current = rollout.template_hash(deployment["spec"]["template"])
        replicas = int(deployment["spec"].get("replicas", 1))
        terminating = sum(p.terminating for p in self._pods.values() if p.deployment == key)
        step = rollout.plan(replicas, strategy, current, self._views(key, strategy.min_ready_s), terminating)
        for name in step.stop:
            await self._stop_pod((key[0], name), self._pods[(key[0], name)])
        for _ in range(step.start):
            await self._start_pod(key, deployment, current)

    async def _start_pod(self, key: Key, deployment: dict[str, Any], template_hash: str) -> None:
        name = f"{key[1]}-{template_hash}-{''.join(secrets.choice(_NAME_ALPHABET) for _ in range(5))}"
        port = ports.free_port()
        body = endpoints.pod_body(deployment, name, template_hash, port, _now())
        created = await self.api.create(kubeapi.PODS, key[0], body)
        self._objects.setdefault("pods", {})[(key[0], name)] = created
        spec = created["spec"]
        container = spec["containers"][0]
        process = pods.PodProcess(
            namespace=key[0],
            name=name,
            template_hash=template_hash,
            port=port,
            pod_dir=self.settings.pods_dir / key[0] / name,
            container=container,
            launch=pods.Launch((), {}, self.settings.pods_dir),
            grace_s=float(spec.get("terminationGracePeriodSeconds", 30)),
            readiness=pods.probe_spec(container.get("readinessProbe"), self.settings.probe_period_cap_s),
            liveness=pods.probe_spec(container.get("livenessProbe"), self.settings.probe_period_cap_s),
            on_change=self.wake,
        )
        self._pods[(key[0], name)] = _Pod(body=created, deployment=key, process=process)
        logger.info("pod %s/%s created on port %d", key[0], name, port)

    def _source(self, namespace: str, ref: volumes.SourceRef) -> dict[str, Any] | None:
        plural = "secrets" if ref.kind == "Secret" else "configmaps"
        return self._objects.get(plural, {}).get((namespace, ref.name))

    def _env_lookup(self, namespace: str) -> Callable[[str, str, str], str | None]:
        def lookup(kind: str, name: str, key: str) -> str | None:
            source = self._source(namespace, volumes.SourceRef(kind, name))
            files = (
                volumes.volume_files({"secret" if kind == "Secret" else "configMap": {}}, source)
                if source
                else None
            )
            return files[key].decode() if files and key in files else None

        return lookup

    async def _refresh_pod(self, key: Key, pod: _Pod) -> None:
        """Materialise volumes (start the process once they exist) and write the Pod's status."""
        if pod.terminating:
            return
        spec = pod.body["spec"]
        sources = {
            ref: self._source(key[0], ref)
            for ref in filter(None, map(volumes.volume_source, spec.get("volumes") or ()))
        }
        missing, changed = volumes.materialise(pod.process.pod_dir, spec.get("volumes") or (), sources)
        if changed and pod.launched:
            logger.info("pod %s/%s: mounted files refreshed", *key)
        if not pod.launched and not missing:
            pod.process.launch = pods.launch_for(
                pod.body,
                pod.process.pod_dir,
                pod.process.port,
                self._env_lookup(key[0]),
                self._upstream_env(),
                pods.host_environment(),
            )
            pod.launched = True
            self._spawn(pod.process.run(), f"pod {key[0]}/{key[1]}")
        status = endpoints.pod_status(
            ready=pod.process.ready,
            started=pod.process.phase is pods.Phase.RUNNING,
            now=_now(),
            previous=pod.written_status,
        )
        if status != pod.written_status:
            await self._patch_ignoring_gone(kubeapi.PODS, key, {"status": status}, "status")
            pod.written_status = status

    def _upstream_env(self) -> dict[str, str]:
        url = self.settings.upstream_url
        if url is None:
            return {}
        return {"TTSFLEET_UPSTREAM__URL": url, "TTSFLEET_UPSTREAM__REST_URL": rest_url_of(url)}

    async def _patch_ignoring_gone(
        self, resource: kubeapi.Resource, key: Key, patch: dict[str, Any], subresource: str = ""
    ) -> None:
        try:
            await self.api.patch(resource, key[0], key[1], patch, subresource)
        except kubeapi.ApiError as error:
            if error.status != 404:
                raise

    async def _stop_pod(self, key: Key, pod: _Pod) -> None:
        """Take the pod out of its Services, mark the Pod deleted, drain and stop it, release the Pod."""
        pod.terminating = True
        logger.info("pod %s/%s terminating", *key)
        await self.api.delete(kubeapi.PODS, key[0], key[1])  # our finalizer keeps it while it drains

        async def finish() -> None:
            try:
                await pod.process.terminate()
            finally:
                self._pods.pop(key, None)
                await self._patch_ignoring_gone(kubeapi.PODS, key, {"metadata": {"finalizers": None}})
                self.wake()

        self._spawn(finish(), f"terminate {key[0]}/{key[1]}")

    async def _release_orphans(self) -> None:
        """Pods holding our finalizer without a process (left by an earlier runner) are let go."""
        for key, body in list(self._objects.get("pods", {}).items()):
            finalizers = body["metadata"].get("finalizers") or []
            if key not in self._pods and endpoints.PROCESS_FINALIZER in finalizers:
                await self._patch_ignoring_gone(kubeapi.PODS, key, {"metadata": {"finalizers": None}})
                await self.api.delete(kubeapi.PODS, key[0], key[1])

    async def _write_deployment_status(self, key: Key, deployment: dict[str, Any]) -> None:
        strategy = rollout.strategy_of(deployment)
        current = rollout.template_hash(deployment["spec"]["template"])
        figures = rollout.counts(current, self._views(key, strategy.min_ready_s))
        replicas = int(deployment["spec"].get("replicas", 1))
        complete = figures.updated == replicas == figures.replicas and figures.available == replicas
        if complete:
            self._progress_started.pop(key, None)
        else:
            self._progress_started.setdefault(key, _now())
        status = rollout.deployment_status(
            deployment, figures, strategy, self._progress_started.get(key), _now()
        )
        if status != self._statuses.get(key) and status != deployment.get("status"):
            await self._patch_ignoring_gone(kubeapi.DEPLOYMENTS, key, {"status": status}, "status")
        self._statuses[key] = status

    # -- services ----------------------------------------------------------------------------------

    def _endpoints_of(self, service: Mapping[str, Any]) -> list[tuple[Key, _Pod]]:
        namespace = service["metadata"]["namespace"]
        selector = (service.get("spec") or {}).get("selector")
        return [
            (key, pod)
            for key, pod in sorted(self._pods.items())
            if key[0] == namespace
            and pod.launched
            and endpoints.selects(selector, pod.body["metadata"].get("labels") or {})
        ]

    def _ready_ports(self, service_key: Key) -> list[int]:
        service = self._objects.get("services", {}).get(service_key)
        if service is None:
            return []
        return [
            pod.process.port
            for _, pod in self._endpoints_of(service)
            if pod.process.ready and not pod.terminating
        ]

    async def _reconcile_services(self) -> None:
        services = self._objects.get("services", {})
        for key in list(self._balancers):
            if key not in services:
                await self._balancers.pop(key).close()
        desired_slices: dict[Key, dict[str, Any]] = {}
        for key, service in list(services.items()):  # the watches change it while we await
            if key not in self._balancers:
                lb = balancer.Balancer(
                    f"{key[1]}.{key[0]}",
                    functools.partial(self._ready_ports, key),
                    propagation_delay_s=self.settings.service_propagation_delay_s,
                )
                await lb.start()
                self._balancers[key] = lb
            self._balancers[key].refresh()
            for _, pod in self._endpoints_of(service):
                body = endpoints.endpoint_slice(
                    service,
                    pod.body,
                    pod.process.port,
                    ready=pod.process.ready,
                    terminating=pod.terminating,
                )
                desired_slices[(key[0], body["metadata"]["name"])] = body
        for key, body in desired_slices.items():
            if self._slices.get(key) != body:
                existing = await self.api.get(kubeapi.ENDPOINTSLICES, key[0], key[1])
                if existing is None:
                    await self.api.create(kubeapi.ENDPOINTSLICES, key[0], body)
                else:
                    await self.api.replace(kubeapi.ENDPOINTSLICES, key[0], key[1], body)
                self._slices[key] = body
        for key in list(self._slices):
            if key not in desired_slices:
                await self.api.delete(kubeapi.ENDPOINTSLICES, key[0], key[1])
                del self._slices[key]
        self._publish()

    def _publish(self) -> None:
        urls = self.service_urls()
        if urls == self._published:
            return
        target = self.settings.services_file
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp")
        staging.write_text(json.dumps(urls, indent=2, sort_keys=True) + "\n")
        staging.replace(target)
        self._published = urls
