"""The pod runner against the embedded API: hand-written Deployments become real gateway processes.

No operator here: the Deployment, ConfigMap, Secrets and Service are written by the test in the shape
the operator renders (args, probes, preStop drain script, mounted config and key files).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.devcluster.conftest import MERGE
from tests.support.recognition import TEST_PHRASES, recognise
from tests.support.servers import ServerProcess, running_emulator
from tests.support.waiting import wait_until
from ttsfleet import client, fingerprints
from ttsfleet.devcluster import endpoints, kubeapi
from ttsfleet.devcluster.apiserver import ApiServer
from ttsfleet.devcluster.runner import Runner, RunnerSettings
from ttsfleet.operator.rendering import draining
from ttsfleet.protocol import Encoding, SpeakOptions

pytestmark = pytest.mark.slow

NS = "default"
TOKEN = "fleet-token-for-tests"
KEY = "emulator-key-one"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
SERVICES = f"/api/v1/namespaces/{NS}/services"
START_DEADLINE_S = 60.0


def _config(**extra: Any) -> str:
    document = {
        "server": {"host": "0.0.0.0", "port": 8080},
        "upstream": {"url": "wss://api.deepgram.com"},
        "credentials": {"deepgram_key_file": "/var/run/ttsfleet/deepgram/key", "poll_interval_s": 0.2},
        "auth": {"enabled": True, "client_tokens_file": "/var/run/ttsfleet/tokens/tokens"},
        "pool": {"warm_min_per_key": 1},
        "drain": {"timeout_s": 20},
        **extra,
    }
    return yaml.safe_dump(document, sort_keys=False)


def _secret(name: str, key: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode()},
    }


def gateway_deployment(name: str = "gw", replicas: int = 2, revision: str = "1") -> dict[str, Any]:
    """A Deployment in the operator's shape, with short probe and drain timings for tests."""
    labels = {"app": name}
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"revision": revision}},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [
                        {
                            "name": "gateway",
                            "image": "ttsfleet/dataplane:test",
                            "args": ["ttsfleet", "dataplane", "--config", "/etc/ttsfleet/config.yaml"],
                            "env": [
                                {
                                    "name": "TTSFLEET_SERVER__POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "httpGet": {"path": "/livez", "port": "http"}},
                            "lifecycle": {
                                "preStop": {"exec": {"command": ["python3", "-c", draining.WAIT_SCRIPT, "0"]}}
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/ttsfleet"},
                                {"name": "key", "mountPath": "/var/run/ttsfleet/deepgram"},
                                {"name": "tokens", "mountPath": "/var/run/ttsfleet/tokens"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{name}-config"}},
                        {
                            "name": "key",
                            "secret": {
                                "secretName": f"{name}-key",
                                "items": [{"key": "api-key", "path": "key"}],
                            },
                        },
                        {"name": "tokens", "secret": {"secretName": f"{name}-tokens"}},
                    ],
                },
            },
        },
    }


def service(name: str = "gw") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]},
    }


@pytest.fixture
def paced_emulator(process_logs: Path) -> Iterator[ServerProcess]:
    """An emulator streaming in real time, so an utterance is still in flight when a rollout starts."""
    latency = ("--handshake-delay-ms", "0", "--first-byte-ms", "0", "--realtime-factor", "1")
    with running_emulator(process_logs, latency=latency, name="paced-emulator") as server:
        yield server


@contextlib.asynccontextmanager
async def running_runner(apiserver: ApiServer, state_dir: Path, upstream: str) -> AsyncIterator[Runner]:
    async with kubeapi.KubeApi(apiserver.base_url) as api:
        runner = Runner(api, RunnerSettings(state_dir=state_dir, upstream_url=upstream))
        task = asyncio.create_task(runner.run(), name="runner")
        try:
            yield runner
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def apply_backend(http: httpx.AsyncClient, name: str = "gw", replicas: int = 2) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-config"}}
    config_map["data"] = {"config.yaml": _config()}
    for path, body in (
        (f"/api/v1/namespaces/{NS}/configmaps", config_map),
        (SECRETS, _secret(f"{name}-key", "api-key", KEY)),
        (SECRETS, _secret(f"{name}-tokens", "tokens", TOKEN + "\n")),
        (SERVICES, service(name)),
        (DEPLOYMENTS, gateway_deployment(name, replicas)),
    ):
        (await http.post(path, json=body)).raise_for_status()


def ready_pods(runner: Runner, deployment: str = "gw") -> list[Any]:
    return [pod for pod in runner.snapshot() if pod.deployment == deployment and pod.ready]


async def deployment_status(http: httpx.AsyncClient, name: str = "gw") -> dict[str, Any]:
    response = await http.get(f"{DEPLOYMENTS}/{name}")
    response.raise_for_status()
    status: dict[str, Any] = response.json().get("status") or {}
    return status


async def wait_rolled_out(http: httpx.AsyncClient, replicas: int, name: str = "gw") -> dict[str, Any]:
    generation = (await http.get(f"{DEPLOYMENTS}/{name}")).json()["metadata"]["generation"]

    async def converged() -> bool:
        status = await deployment_status(http, name)
        return (
            status.get("observedGeneration") == generation
            and status.get("replicas") == status.get("updatedReplicas") == replicas
            and status.get("availableReplicas") == replicas
        )

    await wait_until(converged, START_DEADLINE_S, f"{name} rolled out with {replicas} replicas")
    return await deployment_status(http, name)


async def statusz_of(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        report: dict[str, Any] = (await http.get(base_url + "/statusz")).json()
        return report


async def speak_through(url: str, text: str) -> client.Utterance:
    options = SpeakOptions(model="aura-2-thalia-en", encoding=Encoding.LINEAR16, sample_rate=16000)
    async with client.SpeakClient(url, TOKEN, options) as session:
        return await session.speak(text)


async def test_a_deployment_becomes_ready_processes_with_status_pods_and_endpoint_slices(
    apiserver: ApiServer, client: httpx.AsyncClient, emulator: ServerProcess, tmp_path: Path
) -> None:
    async with running_runner(apiserver, tmp_path / "state", emulator.ws_url) as runner:
        await apply_backend(client)
        status = await wait_rolled_out(client, 2)

        assert status["readyReplicas"] == 2
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["Available"]["status"] == "True"
        assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
        pods = (await client.get(f"/api/v1/namespaces/{NS}/pods")).json()["items"]
        assert len(pods) == 2
        for pod in pods:
            assert pod["status"]["podIP"] == "127.0.0.1"
            assert {"type": "Ready", "status": "True"}.items() <= next(
                c for c in pod["status"]["conditions"] if c["type"] == "Ready"
            ).items()
            port = pod["metadata"]["annotations"][endpoints.PORT_ANNOTATION]
            statusz = await statusz_of(f"http://127.0.0.1:{port}")
            assert statusz["pod"] == pod["metadata"]["name"]
            assert statusz["credential"]["fingerprint"] == fingerprints.fingerprint_secret(KEY)
            # The config file is served as the ConfigMap holds it: the hash covers its exact bytes.
            assert statusz["config"]["hash"] == fingerprints.hash_config(_config().encode())

        async def slices_ready() -> bool:
            listed = (await client.get(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices")).json()
            ready = [
                s
                for s in listed["items"]
                if s["metadata"]["labels"][endpoints.SERVICE_NAME_LABEL] == "gw"
                and s["endpoints"][0]["conditions"]["ready"]
            ]
            return len(ready) == 2

        await wait_until(slices_ready, 10, "two ready endpoint slices")
        assert len(ready_pods(runner)) == 2


async def test_scaling_up_and_down_follows_replicas(
    apiserver: ApiServer, client: httpx.AsyncClient, emulator: ServerProcess, tmp_path: Path
) -> None:
    async with running_runner(apiserver, tmp_path / "state", emulator.ws_url) as runner:
        await apply_backend(client, replicas=1)
        await wait_rolled_out(client, 1)
        scale = {"spec": {"replicas": 3}}
        (await client.patch(f"{DEPLOYMENTS}/gw/scale", json=scale, headers=MERGE)).raise_for_status()
        await wait_rolled_out(client, 3)
        assert len(ready_pods(runner)) == 3
        (
            await client.patch(f"{DEPLOYMENTS}/gw", json={"spec": {"replicas": 1}}, headers=MERGE)
        ).raise_for_status()
        await wait_rolled_out(client, 1)
        await wait_until(lambda: len(runner.snapshot()) == 1, 30, "surplus pods gone")

        async def one_pod_object() -> bool:  # a pod object goes once its process has stopped
            return len((await client.get(f"/api/v1/namespaces/{NS}/pods")).json()["items"]) == 1

        await wait_until(one_pod_object, 30, "surplus pod objects deleted")


async def test_a_template_change_rolls_one_pod_at_a_time_and_in_flight_speech_completes(
    apiserver: ApiServer, client: httpx.AsyncClient, paced_emulator: ServerProcess, tmp_path: Path
) -> None:
    async with running_runner(apiserver, tmp_path / "state", paced_emulator.ws_url) as runner:
        await apply_backend(client, replicas=2)
        await wait_rolled_out(client, 2)
        url = runner.service_urls()[f"gw.{NS}"]
        old_pods = {pod.name for pod in runner.snapshot()}
        phrase = TEST_PHRASES[4]  # about two seconds of speech, streamed in real time
        in_flight = asyncio.create_task(speak_through(url, phrase))

        async def utterance_in_flight() -> bool:
            reports = [await statusz_of(f"http://127.0.0.1:{pod.port}") for pod in runner.snapshot()]
            return any(report["utterances"]["active"] for report in reports)

        await wait_until(utterance_in_flight, 10, "an utterance in flight")

        lowest_ready = 2

        async def watch_availability() -> None:
            nonlocal lowest_ready
            while True:
                lowest_ready = min(lowest_ready, len(ready_pods(runner)))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch_availability())
        patch = {"spec": {"template": {"metadata": {"annotations": {"revision": "2"}}}}}
        (await client.patch(f"{DEPLOYMENTS}/gw", json=patch, headers=MERGE)).raise_for_status()
        status = await wait_rolled_out(client, 2)
        await wait_until(lambda: len(runner.snapshot()) == 2, 30, "old pods gone")
        watcher.cancel()

        utterance = await in_flight
        assert recognise(utterance.audio, Encoding.LINEAR16, 16000, TEST_PHRASES) == phrase
        assert lowest_ready >= 2, "a rollout with maxUnavailable 0 took a ready pod away early"
        assert not old_pods & {pod.name for pod in runner.snapshot()}
        assert status["updatedReplicas"] == 2


async def test_a_secret_change_reaches_the_key_file_without_a_restart(
    apiserver: ApiServer, client: httpx.AsyncClient, emulator: ServerProcess, tmp_path: Path
) -> None:
    async with running_runner(apiserver, tmp_path / "state", emulator.ws_url) as runner:
        await apply_backend(client, replicas=1)
        await wait_rolled_out(client, 1)
        [pod] = runner.snapshot()
        pid = pod.pid
        rotated = _secret("gw-key", "api-key", "emulator-key-two")
        (await client.put(f"{SECRETS}/gw-key", json=rotated)).raise_for_status()
        expected = fingerprints.fingerprint_secret("emulator-key-two")

        async def has_new_key() -> bool:
            report = await statusz_of(f"http://127.0.0.1:{pod.port}")
            return bool(report["credential"]["fingerprint"] == expected)

        await wait_until(has_new_key, 20, "the new key's fingerprint")
        [after] = runner.snapshot()
        assert (after.name, after.pid, after.restarts) == (pod.name, pid, 0)


async def test_the_service_balancer_speaks_through_to_a_pod_and_is_published(
    apiserver: ApiServer, client: httpx.AsyncClient, emulator: ServerProcess, tmp_path: Path
) -> None:
    async with running_runner(apiserver, tmp_path / "state", emulator.ws_url) as runner:
        await apply_backend(client, replicas=2)
        await wait_rolled_out(client, 2)
        published = json.loads((tmp_path / "state" / "services.json").read_text())
        url = published[f"gw.{NS}"]
        assert url == runner.service_urls()[f"gw.{NS}"]
        utterance = await speak_through(url, TEST_PHRASES[0])
        assert recognise(utterance.audio, Encoding.LINEAR16, 16000, TEST_PHRASES) == TEST_PHRASES[0]
        # kube-proxy picks an endpoint at random per connection: ask until every pod has answered.
        pods = {pod.name for pod in runner.snapshot()}
        answered_by: set[str] = set()

        async def every_pod_answered() -> bool:
            answered_by.add((await statusz_of(url.replace("ws://", "http://")))["pod"])
            return answered_by == pods

        await wait_until(
            every_pod_answered, 10, lambda: f"answers from {sorted(pods)}; got {sorted(answered_by)}"
        )


async def test_services_applied_while_the_runner_reconciles_all_get_balancers(
    apiserver: ApiServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Services arriving while a reconcile awaits a balancer's start (a second backend applied right after
    the examples) used to change the dict the reconcile iterated, and the runner died."""
    names = [f"svc-{number}" for number in range(40)]
    async with running_runner(apiserver, tmp_path / "state", "ws://127.0.0.1:9") as runner:
        for name in names:  # one by one: each lands while the reconcile of the ones before is under way
            (await client.post(SERVICES, json=service(name))).raise_for_status()
        expected = {f"{name}.{NS}" for name in names}
        await wait_until(lambda: set(runner.service_urls()) == expected, 15.0, "a balancer per Service")
