"""The operator in-process against an API, with stand-in gateways answering /statusz.

Every test runs on both control planes unless it needs the embedded API's own instruments (its audit
log, its request list): `cluster` is parametrized over the embedded API and the real kube-apiserver
(tests/operator/integration/clusters.py), and a test asking for `apiserver` (the embedded one) runs on
that only. Each test starts with the CRD installed, the `voice` namespace and the chart's RBAC, which
the operator runs under. `operator_running` starts kopf with `spawn_tasks`/`run_tasks` (never
`kopf.operator`, which would cancel pytest's own tasks) and stops it by its stop flag. Waits check a
condition until a deadline; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp.web
import httpx
import kopf
import pytest

from tests.operator.integration import clusters
from tests.support.helm import NAMESPACED_VALUES, RELEASE, RELEASE_NAMESPACE, Manifest, rbac_objects, render
from tests.support.helm import helm as helm  # the fixture, for `chart_rbac`
from tests.support.servers import ServerProcess
from tests.support.waiting import wait_until
from ttsfleet import fingerprints
from ttsfleet.devcluster import manifests
from ttsfleet.devcluster.apiserver import ApiServer, authorization, running_apiserver
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.operator import crd, running
from ttsfleet.operator.settings import OperatorSettings

NAMESPACE = "voice"
BACKENDS = f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends"
SECRETS = f"/api/v1/namespaces/{NAMESPACE}/secrets"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}
PROBE_INTERVAL_S = 0.2
OPERATOR_AGENTS = clusters.OPERATOR_AGENTS
DEEPGRAM_KEY = "dg-key-one"


def fingerprint(key: str) -> str:
    return fingerprints.fingerprint_secret(key)


secret = manifests.secret


def backend(name: str = "aura-en", **spec: Any) -> dict[str, Any]:
    return manifests.backend(name, **spec)


class StandInGateways:
    """An HTTP server answering `/statusz/<pod>` with reports the test sets (docs/contracts.md shape)."""

    def __init__(self) -> None:
        self.reports: dict[str, dict[str, Any]] = {}
        self.base_url = ""

    def report(
        self, pod: str, *, fingerprint: str | None, config_hash: str, valid: bool | None = True
    ) -> None:
        self.reports[pod] = {
            "pod": pod,
            "ready": True,
            "draining": False,
            "sessions": {"active": 1, "total": 5},
            "utterances": {"active": 0, "total": 9},
            "upstream": {"open_sockets": 2, "leased_sockets": 0, "breaker": "closed"},
            "credential": {"fingerprint": fingerprint, "valid": valid, "reloads": 0},
            "config": {"hash": config_hash},
        }

    def url_of(self, pod: Mapping[str, Any]) -> str | None:
        return f"{self.base_url}/statusz/{pod['metadata']['name']}"

    async def _serve(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        found = self.reports.get(request.match_info["pod"])
        if found is None:
            return aiohttp.web.Response(status=503)
        return aiohttp.web.json_response(found)


@pytest.fixture
async def gateways() -> AsyncIterator[StandInGateways]:
    stand_in = StandInGateways()
    app = aiohttp.web.Application()
    app.router.add_get("/statusz/{pod}", stand_in._serve)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stand_in.base_url = f"http://127.0.0.1:{port}"
    yield stand_in
    await runner.cleanup()


SERVICE_ACCOUNT_USER = authorization.service_account_user(RELEASE_NAMESPACE, f"{RELEASE}-ttsfleet")


@pytest.fixture(scope="session")
def chart_rbac(helm: Any) -> list[Manifest]:
    """The chart's Roles, ClusterRoles and bindings for the operator (namespaced mode, `voice` served)."""
    return rbac_objects(render(helm, [NAMESPACED_VALUES]), [NAMESPACE])


async def apply_rbac(cluster: clusters.Cluster, manifests: list[Manifest]) -> None:
    """Store RBAC objects as an administrator would; the operator's calls are held to them (by the
    embedded API through its user agent, by the real one through its ServiceAccount token)."""
    async with cluster.client() as http:
        await clusters.store_rbac(http, manifests)
        if cluster.server is not None:
            cluster.server.identities = authorization.Identities(
                dict.fromkeys(OPERATOR_AGENTS, SERVICE_ACCOUNT_USER)
            )
        else:
            await clusters.wait_until_granted(http, manifests)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Both control planes, unless the test reads the embedded API's instruments (`apiserver`)."""
    if "cluster" in metafunc.fixturenames:
        planes = [clusters.EMBEDDED] if "apiserver" in metafunc.fixturenames else clusters.CONTROL_PLANES
        metafunc.parametrize("cluster", planes, indirect=True)


@pytest.fixture(scope="session")
def real_cluster(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> clusters.Cluster:
    """The shared real control plane, with the namespaces and the operator's ServiceAccount."""
    return clusters.prepare_real(control_plane, tmp_path_factory.mktemp("operator-integration"))


@pytest.fixture
async def cluster(
    request: pytest.FixtureRequest, chart_rbac: list[Manifest]
) -> AsyncIterator[clusters.Cluster]:
    """The test's control plane with the CRD, the `voice` namespace and the chart's RBAC."""
    if request.param == clusters.EMBEDDED:
        async with running_apiserver(bookmark_interval_s=1.0) as server:
            embedded = clusters.Cluster(
                name=clusters.EMBEDDED,
                base_url=server.base_url,
                operator_login={"api_server": server.base_url},
                server=server,
            )
            async with embedded.client() as http:
                created = await http.post(clusters.CRDS, json=crd.build_crd())
                assert created.status_code == 201, created.text
                response = await http.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
                assert response.status_code == 201, response.text
            await apply_rbac(embedded, chart_rbac)
            yield embedded
        return
    real: clusters.Cluster = request.getfixturevalue("real_cluster")
    async with real.client() as http:
        await clusters.empty_namespace(http)
        versions = await clusters.crd_versions(http)
        await apply_rbac(real, chart_rbac)
        real.mark_calls()
        try:
            yield real
        finally:
            await clusters.empty_namespace(http)
            await clusters.restore_crds(http, versions)


@pytest.fixture
def apiserver(cluster: clusters.Cluster) -> ApiServer:
    """The embedded API itself (its audit log, its requests): a test asking for it runs there only."""
    assert cluster.server is not None
    return cluster.server


@pytest.fixture
async def api(cluster: clusters.Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with cluster.client() as http:
        yield http


OperatorFactory = Callable[..., contextlib.AbstractAsyncContextManager[running.Assembly]]


async def _operate(
    assembly: running.Assembly,
    stop_flag: threading.Event,
    ready_flag: threading.Event,
) -> None:
    settings = assembly.runtime.settings
    try:
        tasks = await kopf.spawn_tasks(
            registry=assembly.registry,
            namespaces=settings.namespaces,
            standalone=settings.peering_name is None,
            peering_name=settings.peering_name,
            priority=settings.priority,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
        await kopf.run_tasks(tasks)
    finally:
        await assembly.aclose()


@pytest.fixture
def operator_running(cluster: clusters.Cluster, gateways: StandInGateways) -> OperatorFactory:
    """Start (and on exit stop) an operator serving `voice`; can run again (a restart) or twice (peering).

    kopf runs in a thread with its own event loop, as kopf's embedding guide advises: on stop, kopf
    waits up to 5 s for every task it did not start itself, and in a shared loop that would be the
    embedded API's and the stand-in gateways' connection tasks. Keyword arguments override settings.
    On the real kube-apiserver it logs in with the chart's ServiceAccount token, never as an admin.
    """

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[running.Assembly]:
        settings = OperatorSettings(
            namespaces=(NAMESPACE,),
            probe_interval_s=PROBE_INTERVAL_S,
            metrics_port=0,
            **{**cluster.operator_login, **overrides},
        )
        assembly = running.build(settings, statusz_url=gateways.url_of)
        stop_flag, ready_flag = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=asyncio.run, args=(_operate(assembly, stop_flag, ready_flag),), name="kopf operator"
        )
        thread.start()
        try:
            assert await asyncio.to_thread(ready_flag.wait, 10), "the operator did not start in 10 s"
            yield assembly
        finally:
            stop_flag.set()
            await asyncio.to_thread(thread.join, 15)
            assert not thread.is_alive(), "the operator did not stop in 15 s"

    return start


async def get(api: httpx.AsyncClient, path: str) -> dict[str, Any] | None:
    response = await api.get(path)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def condition(body: Mapping[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for entry in ((body or {}).get("status") or {}).get("conditions") or ():
        if entry["type"] == kind:
            return dict(entry)
    return None


async def with_condition(
    api: httpx.AsyncClient, kind: str, reason: str, name: str = "aura-en"
) -> dict[str, Any] | None:
    """The backend's condition of `kind` when its reason is `reason`, else None (for `wait_until`)."""
    found = condition(await get(api, f"{BACKENDS}/{name}"), kind)
    return found if found and found["reason"] == reason else None


def operator_writes(cluster: clusters.Cluster) -> list[tuple[str, str, str, str]]:
    """(verb, resource, subresource, name) of every write the operator (kopf or our client) made."""
    return [
        (call.verb, call.resource, call.subresource, call.name)
        for call in cluster.operator_calls()
        if call.verb not in ("get", "list", "watch")
    ]


async def events_with(api: httpx.AsyncClient, reason: str) -> list[dict[str, Any]]:
    """The Events in the test namespace with `reason`."""
    items = (await api.get(f"/api/v1/namespaces/{NAMESPACE}/events")).json()["items"]
    return [event for event in items if event["reason"] == reason]


# What the `restricted` Pod Security Standard of the real cluster's `voice` namespace demands of a pod.
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


async def ready_pod(api: httpx.AsyncClient, name: str) -> None:
    """A stand-in gateway pod of aura-en, Ready on 127.0.0.1 as a kubelet would report it.

    Its /statusz answers come from `StandInGateways`, which the test scripts (fingerprints, verdicts);
    no controller owns it, so on the real cluster too nothing but the test writes its status."""
    labels = {
        "app.kubernetes.io/name": "ttsfleet",
        "app.kubernetes.io/instance": "aura-en",
        "app.kubernetes.io/component": "gateway",
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "securityContext": RESTRICTED_POD,
            "containers": [{"name": "gateway", "image": "gateway", "securityContext": RESTRICTED_CONTAINER}],
        },
    }
    (await api.post(PODS, json=pod)).raise_for_status()
    status = {"status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}}
    (await api.patch(f"{PODS}/{name}/status", json=status, headers=MERGE)).raise_for_status()


class Rollouts:
    """Brings a backend's Deployment to rolled out: on the embedded API by writing the status its
    controller and the kubelet would; on the real cluster by running its pods on a node agent (real
    gateway processes, the emulator as Deepgram) and waiting for the real controllers to say so."""

    def __init__(
        self, cluster: clusters.Cluster, api: httpx.AsyncClient, upstream: ServerProcess, state_dir: Path
    ) -> None:
        self.cluster, self.api, self.upstream, self.state_dir = cluster, api, upstream, state_dir
        self.stack = contextlib.AsyncExitStack()
        self.node: Any = None

    async def complete(self, name: str = "aura-en", replicas: int = 2) -> None:
        if not self.cluster.is_real:
            await _write_rolled_out(self.api, name, replicas)
            return
        if self.node is None:
            self.node = await self.stack.enter_async_context(
                clusters.running_node(self.cluster, self.upstream, self.state_dir)
            )

        async def rolled_out() -> bool:
            self.node.check()
            deployment = await get(self.api, f"{DEPLOYMENTS}/{name}")
            status = (deployment or {}).get("status") or {}
            return bool(
                deployment
                and status.get("observedGeneration") == deployment["metadata"]["generation"]
                and status.get("replicas") == status.get("updatedReplicas") == replicas
                and status.get("availableReplicas") == replicas
            )

        await wait_until(rolled_out, ROLLOUT_DEADLINE_S, f"the real controllers to roll out {name}")


ROLLOUT_DEADLINE_S = 90.0


@pytest.fixture
async def rollouts(
    cluster: clusters.Cluster, api: httpx.AsyncClient, emulator: ServerProcess, tmp_path: Path
) -> AsyncIterator[Rollouts]:
    done = Rollouts(cluster, api, emulator, tmp_path / "node")
    async with done.stack:
        yield done


async def _write_rolled_out(api: httpx.AsyncClient, name: str, replicas: int) -> None:
    """Write the Deployment's status as its controller and the kubelet would once pods are ready."""
    deployment = await get(api, f"{DEPLOYMENTS}/{name}")
    assert deployment is not None
    status = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
    }
    response = await api.patch(f"{DEPLOYMENTS}/{name}/status", json={"status": status}, headers=MERGE)
    response.raise_for_status()
