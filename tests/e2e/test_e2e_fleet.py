"""The fleet end to end on one machine: operator, pods, Services, rollouts, rotation, scale, deletion.

One local fleet serves the module; the tests run in file order, each starting from a converged
backend and leaving one (the last deletes it). Every change happens while agents speak through the
Service, and no utterance may be lost or truncated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import BACKENDS, Body, Cluster, is_converged
from tests.e2e.conftest import (
    BACKEND,
    CONVERGE_DEADLINE_S,
    MODEL,
    NAME,
    NAMESPACE,
    SAMPLE_RATE,
    TOKEN,
    LocalFleet,
)
from tests.e2e.load import LoadReport, SpeakingLoad, linear16
from tests.support.recognition import TEST_PHRASES, recognise
from tests.support.tools import require_tool
from tests.support.waiting import eventually
from ttsfleet import client
from ttsfleet.demo import condition
from ttsfleet.devcluster import fleet
from ttsfleet.fingerprints import fingerprint_secret
from ttsfleet.protocol import Encoding

pytestmark = pytest.mark.slow

BACKEND_PATH = f"{BACKENDS.format(namespace=NAMESPACE)}/{NAME}"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
EVENTS = f"/api/v1/namespaces/{NAMESPACE}/events"
DEEPGRAM_SECRET = f"/api/v1/namespaces/{NAMESPACE}/secrets/aura-en-deepgram"
SELECTOR = {"labelSelector": f"app.kubernetes.io/instance={NAME}"}
UTTERANCES_AROUND_A_CHANGE = 6


def speaking(local_fleet: LocalFleet) -> SpeakingLoad:
    """Three agents speaking the test phrases through the backend's Service."""
    return SpeakingLoad(
        local_fleet.services_file, BACKEND, TOKEN, linear16(SAMPLE_RATE, MODEL), local_fleet.references
    )


def live_pods(items: list[Body]) -> list[Body]:
    return [pod for pod in items if not pod["metadata"].get("deletionTimestamp")]


def is_ready_pod(pod: Body) -> bool:
    return condition(pod, "Ready").get("status") == "True"


async def pod_names(cluster: Cluster) -> set[str]:
    return {pod["metadata"]["name"] for pod in live_pods(await cluster.items(PODS, **SELECTOR))}


async def wait_for_pods(cluster: Cluster, what: str, predicate: Callable[[list[Body]], bool]) -> list[Body]:
    """Watch the backend's pods until the live ones satisfy `predicate`."""
    items = await cluster.wait(
        PODS, lambda items: predicate(live_pods(items)), CONVERGE_DEADLINE_S, what, **SELECTOR
    )
    return live_pods(items)


async def all_replaced(cluster: Cluster, before: set[str], replicas: int) -> None:
    """Every pod is new and ready, and the old ones are gone."""
    await wait_for_pods(
        cluster,
        f"{replicas} new ready pods replacing {sorted(before)}",
        lambda pods: (
            len(pods) == replicas
            and all(is_ready_pod(pod) and pod["metadata"]["name"] not in before for pod in pods)
        ),
    )


async def while_speaking(
    local_fleet: LocalFleet, change: Callable[[SpeakingLoad], Awaitable[None]]
) -> LoadReport:
    """Run `change` while agents speak; utterances complete before and after it; none may fail."""
    async with speaking(local_fleet) as load:
        await load.completed_at_least(UTTERANCES_AROUND_A_CHANGE)
        changing = asyncio.create_task(change(load), name="the change")
        failing = asyncio.create_task(load.failed.wait(), name="a failed utterance")
        await asyncio.wait({changing, failing}, return_when=asyncio.FIRST_COMPLETED)
        failing.cancel()
        if not changing.done():  # an utterance failed: no point waiting for the change to finish
            changing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await changing
        assert load.report.failures == [], load.report
        changing.result()
        await load.completed_at_least(UTTERANCES_AROUND_A_CHANGE)
    assert load.report.failures == [], load.report
    return load.report


def converged_after(
    generation: int, also: Callable[[Body], bool] = lambda body: True
) -> Callable[[Body], bool]:
    """The backend's status describes a generation newer than `generation` and it is converged."""
    return lambda body: body["metadata"]["generation"] > generation and is_converged(body) and also(body)


async def current(cluster: Cluster) -> Body:
    body = await cluster.get(BACKEND_PATH)
    assert body is not None
    return body


async def test_examples_become_ready_and_speak_recognisably_through_the_service(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    body = await current(cluster)
    assert is_converged(body)
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    assert body["status"]["endpoint"] == f"ws://{NAME}.{NAMESPACE}.svc.cluster.local:8080/v1/speak"
    assert body["status"]["readyReplicas"] == 2

    url = fleet.read_services(local_fleet.state_dir)[BACKEND]  # the Service, found by name
    async with client.SpeakClient(url, TOKEN, linear16(SAMPLE_RATE, MODEL)) as session:
        for phrase in TEST_PHRASES[:3]:
            utterance = await session.speak(phrase)
            heard = recognise(utterance.audio, Encoding.LINEAR16, SAMPLE_RATE, TEST_PHRASES)
            assert heard == phrase

    async def nothing(load: SpeakingLoad) -> None:
        await load.completed_at_least(UTTERANCES_AROUND_A_CHANGE)
        await load.reached_pods(2)  # random per connection: both pods, as new sockets open

    report = await while_speaking(local_fleet, nothing)
    assert len(report.pods) == 2, f"the Service balanced over {report.pods}"


async def test_a_config_change_rolls_every_pod_with_no_utterance_lost(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    before = await current(cluster)
    pods_before = await pod_names(cluster)
    progressing: list[str] = []

    async def change(load: SpeakingLoad) -> None:
        await cluster.patch(BACKEND_PATH, {"spec": {"limits": {"maxSessions": 500}}})
        await cluster.wait_backend(
            NAMESPACE,
            NAME,
            converged_after(before["metadata"]["generation"]),
            CONVERGE_DEADLINE_S,
            "the config rollout to converge",
            on_change=lambda body: progressing.append(str(condition(body, "Progressing").get("reason"))),
        )
        await all_replaced(cluster, pods_before, 2)
        await load.reached_a_pod_outside(pods_before)

    report = await while_speaking(local_fleet, change)
    assert "RollingOut" in progressing or "ConfigRollingOut" in progressing, progressing
    assert progressing[-1] == "RolloutComplete"
    after = await current(cluster)
    assert after["status"]["configHash"] != before["status"]["configHash"]
    assert report.pods - pods_before, "the agents reached the new pods"
    # The Deployment controller rolled through ReplicaSets: the new one holds both pods, the old ones none.
    replica_sets = await cluster.items(f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets", **SELECTOR)
    sizes = sorted(int(item["spec"]["replicas"]) for item in replica_sets)
    assert len(sizes) >= 2 and sizes == [0] * (len(sizes) - 1) + [2], sizes


def every_pod_runs(body: Body, fingerprint: str) -> bool:
    """Converged, and the status says every desired pod reports the key with `fingerprint`."""
    credentials = (body.get("status") or {}).get("credentials") or {}
    return (
        is_converged(body)
        and credentials.get("currentFingerprint") == fingerprint
        and bool(credentials.get("complete"))
        and credentials.get("podsOnCurrent") == body["spec"]["replicas"]
    )


async def test_a_reloaded_key_reaches_every_pod_without_a_restart_or_a_failed_utterance(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    new_key = "e2e-rotated-key-reload"
    fingerprint = fingerprint_secret(new_key)
    pods_before = await pod_names(cluster)

    async def rotate(load: SpeakingLoad) -> None:
        await cluster.patch(DEEPGRAM_SECRET, {"stringData": {"api-key": new_key}})
        await cluster.wait_backend(
            NAMESPACE,
            NAME,
            lambda body: (
                every_pod_runs(body, fingerprint) and not body["status"]["credentials"]["staleFingerprints"]
            ),
            CONVERGE_DEADLINE_S,
            "every pod to report the new key",
        )
        await cluster.wait(
            EVENTS,
            lambda events: any(
                event.get("reason") == "CredentialRotationComplete"
                and fingerprint in event.get("message", "")
                for event in events
            ),
            CONVERGE_DEADLINE_S,
            "the CredentialRotationComplete Event",
        )

    await while_speaking(local_fleet, rotate)
    assert await pod_names(cluster) == pods_before, "reload must not restart pods"
    stats = httpx.get(f"{local_fleet.state.upstream_url}/_emulator/stats".replace("ws://", "http://")).json()
    assert stats["chars_by_key"].get(fingerprint, 0) > 0, "the emulator was spoken to with the new key"


async def test_a_restart_rotation_rolls_every_pod_with_no_utterance_lost(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    before = await current(cluster)
    await cluster.patch(BACKEND_PATH, {"spec": {"rotation": {"strategy": "restart"}}})
    await cluster.wait_backend(
        NAMESPACE,
        NAME,
        converged_after(before["metadata"]["generation"]),
        CONVERGE_DEADLINE_S,
        "restart mode",
    )
    await wait_for_pods(
        cluster, "the pods to settle", lambda pods: len(pods) == 2 and all(map(is_ready_pod, pods))
    )
    pods_before = await pod_names(cluster)
    new_key = "e2e-rotated-key-restart"
    fingerprint = fingerprint_secret(new_key)

    async def rotate(load: SpeakingLoad) -> None:
        await cluster.patch(DEEPGRAM_SECRET, {"stringData": {"api-key": new_key}})
        await all_replaced(cluster, pods_before, 2)
        await cluster.wait_backend(
            NAMESPACE,
            NAME,
            lambda body: every_pod_runs(body, fingerprint),
            CONVERGE_DEADLINE_S,
            "the restarted pods to report the new key",
        )

    await while_speaking(local_fleet, rotate)


async def _kubectl_scale(local_fleet: LocalFleet, replicas: int) -> None:
    """`kubectl scale ttsb/<name> --replicas=N`, as a platform team would type it."""
    env = {**os.environ, "KUBECONFIG": local_fleet.state.kubeconfig, "HOME": str(local_fleet.state_dir)}
    process = await asyncio.create_subprocess_exec(
        local_fleet.state.kubectl or require_tool("kubectl"),
        f"--cache-dir={local_fleet.state_dir / 'kubectl-cache'}",
        "scale",
        f"ttsb/{NAME}",
        "-n",
        NAMESPACE,
        f"--replicas={replicas}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode == 0, f"kubectl scale failed: {err.decode()}"
    assert "scaled" in out.decode()


async def test_the_scale_subresource_moves_the_pods(local_fleet: LocalFleet, cluster: Cluster) -> None:
    async def scale_to(replicas: int, *, with_kubectl: bool) -> None:
        if with_kubectl:
            await _kubectl_scale(local_fleet, replicas)
        else:
            await cluster.patch(f"{BACKEND_PATH}/scale", {"spec": {"replicas": replicas}})
        await wait_for_pods(
            cluster,
            f"{replicas} ready pods",
            lambda pods: len(pods) == replicas and all(map(is_ready_pod, pods)),
        )
        body = await cluster.wait_backend(
            NAMESPACE,
            NAME,
            lambda body: body["spec"]["replicas"] == replicas and is_converged(body),
            CONVERGE_DEADLINE_S,
            f"status.replicas {replicas}",
        )
        scale = await cluster.get(f"{BACKEND_PATH}/scale")
        assert scale is not None
        assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (replicas, replicas)
        assert scale["status"]["selector"] == body["status"]["selector"]

    async def change(load: SpeakingLoad) -> None:
        await scale_to(3, with_kubectl=True)
        await load.completed_at_least(UTTERANCES_AROUND_A_CHANGE)
        await scale_to(2, with_kubectl=False)

    await while_speaking(local_fleet, change)


async def test_an_operator_killed_mid_rollout_converges_after_its_restart(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    before = await current(cluster)
    pods_before = await pod_names(cluster)
    deployment_path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"
    deployment = await cluster.get(deployment_path)
    assert deployment is not None

    async def change(load: SpeakingLoad) -> None:
        await cluster.patch(BACKEND_PATH, {"spec": {"limits": {"maxSessions": 400}}})
        await cluster.wait(
            f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
            lambda items: any(
                item["metadata"]["name"] == NAME
                and item["metadata"]["generation"] > deployment["metadata"]["generation"]
                for item in items
            ),
            CONVERGE_DEADLINE_S,
            "the operator to start the rollout",
        )
        local_fleet.kill_operator()  # the runner keeps rolling; nobody reconciles the backend
        await cluster.patch(BACKEND_PATH, {"spec": {"limits": {"maxSessions": 300}}})
        local_fleet.start_operator()
        await cluster.wait_backend(
            NAMESPACE,
            NAME,
            converged_after(before["metadata"]["generation"] + 1),
            CONVERGE_DEADLINE_S,
            "the restarted operator to converge",
        )
        await all_replaced(cluster, pods_before, 2)

    await while_speaking(local_fleet, change)
    configs = await cluster.items(f"/api/v1/namespaces/{NAMESPACE}/configmaps", **SELECTOR)
    assert any("max_sessions: 300" in (item.get("data") or {}).get("config.yaml", "") for item in configs)


async def test_deleting_the_backend_collects_its_children_and_stops_its_pods(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    pods = live_pods(await cluster.items(PODS, **SELECTOR))
    ports = [fleet.pod_local_port(local_fleet.state, pod) for pod in pods]
    assert len(ports) == 2 and None not in ports, ports

    # Each of the operator's children, and theirs: ReplicaSets and pods of the Deployment, the Service's
    # EndpointSlices (the controller copies the Service's labels) — all by the real garbage collector.
    children: dict[str, Any] = {
        "deployments": f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
        "replicasets": f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets",
        "services": f"/api/v1/namespaces/{NAMESPACE}/services",
        "endpointslices": f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices",
        "configmaps": f"/api/v1/namespaces/{NAMESPACE}/configmaps",
        "poddisruptionbudgets": f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets",
        "networkpolicies": f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies",
        "pods": PODS,
    }
    for kind, path in children.items():
        assert await cluster.items(path, **SELECTOR), f"the backend has {kind} before its deletion"

    (await cluster.http.delete(BACKEND_PATH)).raise_for_status()
    await cluster.wait(
        BACKENDS.format(namespace=NAMESPACE), lambda items: not items, CONVERGE_DEADLINE_S, "the backend gone"
    )
    for kind, path in children.items():
        await cluster.wait(
            path, lambda items: not items, CONVERGE_DEADLINE_S, f"{kind} collected", **SELECTOR
        )
    for port in ports:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2.0)
    await eventually(
        lambda: BACKEND not in fleet.read_services(local_fleet.state_dir),
        10,
        "the Service's address withdrawn",
    )
