"""A TTSBackend's life under the real operator: create, change, roll out, restart, delete, bad spec."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.operator.integration.clusters import Cluster
from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEEPGRAM_KEY,
    DEPLOYMENTS,
    MERGE,
    NAMESPACE,
    SECRETS,
    OperatorFactory,
    Rollouts,
    backend,
    condition,
    events_with,
    fingerprint,
    get,
    operator_writes,
    secret,
)
from tests.support.waiting import wait_until
from ttsfleet.operator import applying, running
from ttsfleet.operator.rendering import meta

# The real garbage collector pauses while it starts following a newly installed kind (CRDs come and go
# between tests), so collection can lag by its 30 s resync.
GC_DEADLINE_S = 90.0
CHILDREN = {
    "configmaps": "/api/v1/namespaces/voice/configmaps/aura-en-config",
    "services": "/api/v1/namespaces/voice/services/aura-en",
    "deployments": f"{DEPLOYMENTS}/aura-en",
    "hpa": "/apis/autoscaling/v2/namespaces/voice/horizontalpodautoscalers/aura-en",
    "pdb": "/apis/policy/v1/namespaces/voice/poddisruptionbudgets/aura-en",
}


async def converged_status(api: httpx.AsyncClient, name: str = "aura-en") -> dict[str, Any] | None:
    body = await get(api, f"{BACKENDS}/{name}")
    status = (body or {}).get("status") or {}
    if body and status.get("observedGeneration") == body["metadata"]["generation"]:
        return body
    return None


async def test_create_renders_owned_children_and_status(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        created = await api.post(BACKENDS, json=backend(replicas=2))
        created.raise_for_status()
        uid = created.json()["metadata"]["uid"]
        body = await wait_until(lambda: converged_status(api), what="status with observedGeneration")
        for kind, path in CHILDREN.items():
            if kind == "hpa":
                assert await get(api, path) is None  # fixed replicas: no autoscaler
                continue
            child = await wait_until(lambda path=path: get(api, path), what=kind)
            owner = child["metadata"]["ownerReferences"][0]
            assert owner["uid"] == uid and owner["controller"] is True
            assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ttsfleet-operator"
        status = body["status"]
        assert status["endpoint"] == "ws://aura-en.voice.svc.cluster.local:8080/v1/speak"
        assert status["credentials"]["currentFingerprint"] == fingerprint(DEEPGRAM_KEY)
        assert condition(body, "Ready")["status"] == "False"
        deployment = await get(api, CHILDREN["deployments"])
        assert deployment["spec"]["replicas"] == 2


async def test_spec_change_rolls_a_new_config_hash_then_ready(
    api: httpx.AsyncClient, operator_running: OperatorFactory, rollouts: Rollouts
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=2))).raise_for_status()
        await wait_until(lambda: converged_status(api), what="first status")
        await rollouts.complete()
        ready = await wait_until(
            lambda: _with_condition(api, "Ready", "True"), what="Ready after the Deployment rolled out"
        )
        old_hash = ready["status"]["configHash"]

        patch = {"spec": {"cache": {"maxBytes": 1024}}}
        (await api.patch(f"{BACKENDS}/aura-en", json=patch, headers=MERGE)).raise_for_status()

        async def new_template() -> bool:
            deployment = await get(api, CHILDREN["deployments"])
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            return annotations[meta.CONFIG_HASH_ANNOTATION] != old_hash

        await wait_until(new_template, what="new config hash on the pod template")
        progressing = await wait_until(
            lambda: _with_condition(api, "Progressing", "True", generation=2), what="Progressing"
        )
        assert progressing["status"]["configHash"] != old_hash
        await rollouts.complete()
        await wait_until(lambda: _with_condition(api, "Ready", "True", generation=2), what="Ready again")


async def _with_condition(
    api: httpx.AsyncClient, kind: str, value: str, generation: int = 1
) -> dict[str, Any] | None:
    body = await get(api, f"{BACKENDS}/aura-en")
    found = condition(body, kind)
    if found and found["status"] == value and body["status"].get("observedGeneration") == generation:
        return body
    return None


async def test_hpa_owns_replicas(
    api: httpx.AsyncClient, cluster: Cluster, operator_running: OperatorFactory
) -> None:
    """The HPA scales the Deployment (on kube-apiserver the real HPA controller, which lifts it to
    minReplicas; on the embedded API the test in its place), and a later spec change leaves the count
    alone: the operator's applies never own `replicas`."""
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    autoscaled = backend(autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetActiveStreamsPerPod": 50})
    async with operator_running():
        (await api.post(BACKENDS, json=autoscaled)).raise_for_status()
        hpa = await wait_until(lambda: get(api, CHILDREN["hpa"]), what="HPA")
        assert hpa["spec"]["scaleTargetRef"]["name"] == "aura-en"
        await wait_until(lambda: get(api, CHILDREN["pdb"]), what="PDB (min 2 pods)")
        if cluster.is_real:
            deployment = await wait_until(lambda: _scaled_to(api, 2), 60.0, "the HPA controller's minimum")
        else:
            scaled = {"spec": {"replicas": 5}}
            (await api.patch(CHILDREN["deployments"], json=scaled, headers=MERGE)).raise_for_status()
            deployment = await get(api, CHILDREN["deployments"])
        scaled_to = deployment["spec"]["replicas"]
        change = {"spec": {"autoscaling": {"maxReplicas": 8}, "cache": {"maxBytes": 1024}}}
        (await api.patch(f"{BACKENDS}/aura-en", json=change, headers=MERGE)).raise_for_status()
        await wait_until(lambda: _hpa_max(api, 8), what="HPA maxReplicas updated")
        await wait_until(lambda: _template_changed(api, deployment), what="the spec change applied")
        deployment = await get(api, CHILDREN["deployments"])
        assert deployment is not None and deployment["spec"]["replicas"] == scaled_to
        assert not applying.owns_replicas(deployment), "the operator applied replicas"


async def _scaled_to(api: httpx.AsyncClient, replicas: int) -> dict[str, Any] | None:
    """The Deployment once its replicas are `replicas` (the API's default is 1: the HPA lifts it)."""
    deployment = await get(api, CHILDREN["deployments"])
    return deployment if deployment and deployment["spec"].get("replicas") == replicas else None


async def _template_changed(api: httpx.AsyncClient, before: dict[str, Any]) -> bool:
    after = await get(api, CHILDREN["deployments"])
    return bool(after and after["spec"]["template"] != before["spec"]["template"])


async def _hpa_max(api: httpx.AsyncClient, expected: int) -> bool:
    hpa = await get(api, CHILDREN["hpa"])
    return bool(hpa and hpa["spec"]["maxReplicas"] == expected)


async def test_deleting_the_backend_garbage_collects_children(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=2))).raise_for_status()
        await wait_until(lambda: get(api, CHILDREN["pdb"]), what="children")
        (await api.delete(f"{BACKENDS}/aura-en")).raise_for_status()
        await wait_until(
            lambda: _absent(api, f"{BACKENDS}/aura-en"), what="backend gone (kopf drops its finalizer)"
        )
        # The garbage collector (the real one on kube-apiserver) follows the ownerReferences.
        for kind, path in CHILDREN.items():
            await wait_until(lambda path=path: _absent(api, path), GC_DEADLINE_S, f"the {kind} collected")


async def _absent(api: httpx.AsyncClient, path: str) -> bool:
    return await get(api, path) is None


async def test_restart_makes_no_writes_for_an_unchanged_backend(
    api: httpx.AsyncClient, cluster: Cluster, operator_running: OperatorFactory, rollouts: Rollouts
) -> None:
    """The operator's requests come from the embedded API's audit log, or kube-apiserver's."""
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running() as first:
        (await api.post(BACKENDS, json=backend(replicas=2))).raise_for_status()
        await wait_until(lambda: converged_status(api), what="status")
        await wait_until(lambda: get(api, CHILDREN["deployments"]), what="Deployment")
        await rollouts.complete()
        await wait_until(lambda: _with_condition(api, "Ready", "True"), what="Ready")
        # Real controllers keep writing status for a moment after Ready: unchanged means settled.
        async with asyncio.timeout(60):
            await _settled(first)
    cluster.mark_calls()
    async with operator_running() as assembly:
        await wait_until(
            lambda: assembly.runtime.metrics.reconciles.labels("unchanged")._value.get() >= 1,
            what="the resume reconcile",
        )
        writes = operator_writes(cluster)
        # Let a few probe ticks pass too: an idle backend writes nothing, and reads nothing either
        # (its Secret, Deployment and pods come from the operator's watches).
        refreshes = assembly.runtime.metrics.status_refreshes
        ticks = refreshes._value.get()
        cluster.mark_calls()
        await wait_until(lambda: refreshes._value.get() >= ticks + 3, what="three probe ticks")
        idle_calls = _operator_calls(cluster)
    assert writes == [] and operator_writes(cluster) == []
    assert idle_calls == []
    listed = await api.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")
    assert len(listed.json()["items"]) == 1


async def _settled(assembly: running.Assembly) -> None:
    """Until three probe ticks in a row leave the backend's status as it was."""
    metrics = assembly.runtime.metrics
    while True:
        writes, ticks = metrics.status_writes._value.get(), metrics.status_refreshes._value.get()
        await wait_until(
            lambda ticks=ticks: metrics.status_refreshes._value.get() >= ticks + 3, what="three probe ticks"
        )
        if metrics.status_writes._value.get() == writes:
            return


def _operator_calls(cluster: Cluster) -> list[tuple[str, str, str]]:
    """Operator requests other than its long-lived watches."""
    return [
        (call.verb, call.resource, call.name) for call in cluster.operator_calls() if call.verb != "watch"
    ]


def _strip_cel(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_cel(v) for k, v in node.items() if k != "x-kubernetes-validations"}
    if isinstance(node, list):
        return [_strip_cel(item) for item in node]
    return node


async def without_cel_rules(api: httpx.AsyncClient) -> None:
    """Serve the CRD without its CEL rules, as an apiserver older than CEL validation would."""
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/ttsbackends.ttsfleet.io"
    crd = (await api.get(path)).json()
    (await api.put(path, json=_strip_cel(crd))).raise_for_status()


async def created(api: httpx.AsyncClient, body: dict[str, Any]) -> bool:
    """Create `body`; False while the API refuses it (a real apiserver swaps a CRD's validators a moment
    after the CRD changes)."""
    response = await api.post(BACKENDS, json=body)
    if response.status_code == 422:
        return False
    response.raise_for_status()
    return True


async def test_bad_spec_is_degraded_with_a_reason_not_a_crash(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    bad = backend(replicas=2, autoscaling={"minReplicas": 1, "maxReplicas": 3})  # both: the CEL rule says no
    refused = await api.post(BACKENDS, json=bad)
    assert refused.status_code == 422 and "replicas or autoscaling" in refused.json()["message"]
    await without_cel_rules(api)  # an apiserver without CEL admits it; the operator still says no
    async with operator_running():
        await wait_until(lambda: created(api, bad), 30.0, "the backend admitted without CEL rules")
        body = await wait_until(lambda: _with_condition(api, "Degraded", "True"), what="Degraded")
        degraded = condition(body, "Degraded")
        assert degraded["reason"] == "InvalidSpec"
        assert "replicas or autoscaling" in degraded["message"]
        assert condition(body, "Ready")["status"] == "False"
        assert await get(api, CHILDREN["deployments"]) is None
        # kopf posts Events from a queue, a moment after the status shows the reason.
        events = await wait_until(lambda: events_with(api, "InvalidSpec"), what="the InvalidSpec Event")
        assert events[0]["type"] == "Warning"
        # Fixing the spec recovers without a restart.
        fix = {"spec": {"autoscaling": None}}
        (await api.patch(f"{BACKENDS}/aura-en", json=fix, headers=MERGE)).raise_for_status()
        await wait_until(lambda: get(api, CHILDREN["deployments"]), what="Deployment after the fix")


async def test_fields_the_spec_drops_go_away_and_other_controllers_fields_stay(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    service_path = CHILDREN["services"]
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    annotated = {"annotations": {"example.com/lb": "internal", "example.com/team": "voice"}}
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=2, service=annotated))).raise_for_status()
        await wait_until(lambda: get(api, service_path), what="the Service")
        mesh = {"metadata": {"annotations": {"mesh.example/inject": "true"}}}
        patched = await api.patch(f"{service_path}?fieldManager=mesh", json=mesh, headers=MERGE)
        patched.raise_for_status()
        smaller = {"spec": {"service": {"annotations": {"example.com/team": None}}}}
        (await api.patch(f"{BACKENDS}/aura-en", json=smaller, headers=MERGE)).raise_for_status()

        async def dropped() -> dict[str, Any] | None:
            body = await get(api, service_path)
            annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
            return annotations if "example.com/team" not in annotations else None

        annotations = await wait_until(dropped, what="the dropped annotation removed")
        assert annotations["example.com/lb"] == "internal"
        assert annotations["mesh.example/inject"] == "true", "another manager's field was removed"

        # Switching to autoscaling leaves the Deployment's replicas alone until the HPA acts.
        autoscale = {"spec": {"replicas": None, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}}}
        (await api.patch(f"{BACKENDS}/aura-en", json=autoscale, headers=MERGE)).raise_for_status()
        await wait_until(lambda: get(api, CHILDREN["hpa"]), what="the HPA")
        deployment = await get(api, CHILDREN["deployments"])
        assert deployment is not None and deployment["spec"].get("replicas") == 2
