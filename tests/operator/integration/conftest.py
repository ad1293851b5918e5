"""The operator in-process against the embedded API, with stand-in gateways answering /statusz.

Each test gets a fresh API with the CRD installed and the `voice` namespace; `operator_running`
starts kopf with `spawn_tasks`/`run_tasks` (never `kopf.operator`, which would cancel pytest's own
tasks) and stops it by its stop flag. Waits check a condition until a deadline; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp.web
import httpx
import kopf
import pytest

from tests.support.helm import NAMESPACED_VALUES, RELEASE, RELEASE_NAMESPACE, Manifest, rbac_objects, render
from tests.support.helm import helm as helm  # the fixture, for `chart_rbac`
from ttsfleet import fingerprints
from ttsfleet.devcluster.apiserver import ApiServer, authorization, running_apiserver
from ttsfleet.operator import crd, running
from ttsfleet.operator.settings import OperatorSettings

NAMESPACE = "voice"
BACKENDS = f"/apis/ttsfleet.io/v1alpha1/namespaces/{NAMESPACE}/ttsbackends"
SECRETS = f"/api/v1/namespaces/{NAMESPACE}/secrets"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}
PROBE_INTERVAL_S = 0.2
OPERATOR_AGENTS = ("ttsfleet-operator/", "kopf/")
DEEPGRAM_KEY = "dg-key-one"


def fingerprint(key: str) -> str:
    return fingerprints.fingerprint_secret(key)


def secret(name: str, key: str, value: str, *, watch: bool = True) -> dict[str, Any]:
    labels = {"ttsfleet.io/watch": "true"} if watch else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": labels},
        "data": {key: base64.b64encode(value.encode()).decode()},
    }


def backend(name: str = "aura-en", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ttsfleet.io/v1alpha1",
        "kind": "TTSBackend",
        "metadata": {"name": name},
        "spec": {
            "image": "ghcr.io/ttsfleet/ttsfleet:0.1.0",
            "deepgram": {"apiKeySecretRef": {"name": "deepgram"}},
            "auth": {"enabled": False},
            **spec,
        },
    }


async def wait_until(
    condition: Callable[[], Awaitable[Any] | Any], deadline_s: float = 10.0, what: str = "condition"
) -> Any:
    """Check `condition` until it returns something truthy (returned); fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        await asyncio.sleep(0.02)  # a poll step between checks, not a synchronisation


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


async def apply_rbac(server: ApiServer, manifests: list[Manifest]) -> None:
    """Store RBAC objects as an administrator would, and hold the operator's calls to them."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for manifest in manifests:
            kind = manifest["kind"]
            plural = f"{kind.lower()}s"
            namespace = manifest["metadata"].get("namespace")
            where = f"/namespaces/{namespace}" if namespace else ""
            path = f"/apis/rbac.authorization.k8s.io/v1{where}/{plural}"
            existing = await http.get(f"{path}/{manifest['metadata']['name']}")
            if existing.status_code == 200:
                response = await http.put(f"{path}/{manifest['metadata']['name']}", json=manifest)
            else:
                response = await http.post(path, json=manifest)
            assert response.is_success, response.text
    server.identities = authorization.Identities(dict.fromkeys(OPERATOR_AGENTS, SERVICE_ACCOUNT_USER))


@pytest.fixture
async def apiserver(chart_rbac: list[Manifest]) -> AsyncIterator[ApiServer]:
    """A fresh API with the CRD, the `voice` namespace and the chart's RBAC, which the operator runs under."""
    async with running_apiserver(bookmark_interval_s=1.0) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            created = await http.post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd.build_crd()
            )
            assert created.status_code == 201, created.text
            response = await http.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
            assert response.status_code == 201, response.text
        await apply_rbac(server, chart_rbac)
        yield server


@pytest.fixture
async def api(apiserver: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=apiserver.base_url, timeout=10.0) as http:
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
def operator_running(apiserver: ApiServer, gateways: StandInGateways) -> OperatorFactory:
    """Start (and on exit stop) an operator serving `voice`; can run again (a restart) or twice (peering).

    kopf runs in a thread with its own event loop, as kopf's embedding guide advises: on stop, kopf
    waits up to 5 s for every task it did not start itself, and in a shared loop that would be the
    embedded API's and the stand-in gateways' connection tasks. Keyword arguments override settings.
    """

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[running.Assembly]:
        settings = OperatorSettings(
            api_server=apiserver.base_url,
            namespaces=(NAMESPACE,),
            probe_interval_s=PROBE_INTERVAL_S,
            metrics_port=0,
            **overrides,
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


def operator_writes(server: ApiServer) -> list[tuple[str, str, str, str]]:
    """(verb, resource, subresource, name) of every write the operator (kopf or our client) made."""
    return [
        (r.verb, r.resource, r.subresource, r.name)
        for r in server.audit.records(resource_only=True)
        if r.user_agent.startswith(OPERATOR_AGENTS) and r.verb not in ("get", "list", "watch")
    ]


async def events_with(api: httpx.AsyncClient, reason: str) -> list[dict[str, Any]]:
    """The Events in the test namespace with `reason`."""
    items = (await api.get(f"/api/v1/namespaces/{NAMESPACE}/events")).json()["items"]
    return [event for event in items if event["reason"] == reason]


async def ready_pod(api: httpx.AsyncClient, name: str) -> None:
    """A gateway pod of aura-en that is Ready on 127.0.0.1, as the kubelet would report it."""
    labels = {
        "app.kubernetes.io/name": "ttsfleet",
        "app.kubernetes.io/instance": "aura-en",
        "app.kubernetes.io/component": "gateway",
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "gateway", "image": "gateway"}]},
    }
    (await api.post(PODS, json=pod)).raise_for_status()
    status = {"status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}}
    (await api.patch(f"{PODS}/{name}/status", json=status, headers=MERGE)).raise_for_status()
