"""Warnings a running backend raises: a stuck rollout and a refused Deepgram key, as conditions and Events."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.operator.integration.clusters import Cluster
from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEEPGRAM_KEY,
    DEPLOYMENTS,
    MERGE,
    SECRETS,
    OperatorFactory,
    StandInGateways,
    backend,
    condition,
    events_with,
    fingerprint,
    get,
    ready_pod,
    secret,
    with_condition,
)
from tests.support.waiting import wait_until

# What the Deployment controller says once progressDeadlineSeconds has passed.
STUCK = re.compile(r'ReplicaSet "aura-en-[a-z0-9]+" has timed out progressing\.')
SHORTEST_DEADLINE_S = 30  # the CRD's minimum


async def stuck_rollout(api: httpx.AsyncClient) -> None:
    """Write the Deployment's status as its controller does once progressDeadlineSeconds has passed."""
    deployment = await get(api, f"{DEPLOYMENTS}/aura-en")
    assert deployment is not None
    status = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": 2,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "aura-en-5d4f" has timed out progressing.',
            },
        ],
    }
    patched = await api.patch(f"{DEPLOYMENTS}/aura-en/status", json={"status": status}, headers=MERGE)
    patched.raise_for_status()


async def test_a_rollout_past_its_deadline_degrades_the_backend_and_posts_one_warning(
    api: httpx.AsyncClient, cluster: Cluster, operator_running: OperatorFactory
) -> None:
    """On kube-apiserver the real Deployment controller declares the deadline passed (no node runs the
    pods, so the rollout cannot progress); on the embedded API the test writes what it would."""
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    deadline = {"progressDeadlineSeconds": SHORTEST_DEADLINE_S}
    async with operator_running() as assembly:
        (await api.post(BACKENDS, json=backend(replicas=2, rollout=deadline))).raise_for_status()
        await wait_until(lambda: get(api, f"{DEPLOYMENTS}/aura-en"), what="Deployment")
        if not cluster.is_real:
            await stuck_rollout(api)
        degraded = await wait_until(
            lambda: with_condition(api, "Degraded", "ProgressDeadlineExceeded"),
            SHORTEST_DEADLINE_S * 3,
            "Degraded",
        )
        assert degraded["status"] == "True" and STUCK.fullmatch(degraded["message"]), degraded
        progressing = condition(await get(api, f"{BACKENDS}/aura-en"), "Progressing")
        assert progressing is not None and progressing["status"] == "False"
        posted = await wait_until(
            lambda: events_with(api, "ProgressDeadlineExceeded"), what="ProgressDeadlineExceeded Event"
        )
        # It persists through later probe ticks without a second Event.
        refreshes = assembly.runtime.metrics.status_refreshes
        ticks = refreshes._value.get()
        await wait_until(lambda: refreshes._value.get() >= ticks + 2, what="two more probe ticks")
    assert len(await events_with(api, "ProgressDeadlineExceeded")) == 1
    assert posted[0]["type"] == "Warning" and posted[0]["message"] == degraded["message"]


async def test_a_key_deepgram_refuses_makes_credentials_invalid_and_posts_upstream_auth_failed(
    api: httpx.AsyncClient, gateways: StandInGateways, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=1))).raise_for_status()
        body = await wait_until(lambda: get(api, f"{BACKENDS}/aura-en"), what="backend")
        first = await wait_until(lambda: _status_field(api, "configHash"), what="status with a config hash")
        assert body is not None
        gateways.report("aura-en-a", fingerprint=fingerprint(DEEPGRAM_KEY), config_hash=first, valid=True)
        await ready_pod(api, "aura-en-a")
        await wait_until(lambda: with_condition(api, "CredentialsValid", "UpstreamAccepted"), what="accepted")
        # Deepgram starts refusing the key (revoked upstream): the gateway reports credential.valid false.
        gateways.report("aura-en-a", fingerprint=fingerprint(DEEPGRAM_KEY), config_hash=first, valid=False)
        refused = await wait_until(
            lambda: with_condition(api, "CredentialsValid", "UpstreamAuthFailed"), what="UpstreamAuthFailed"
        )
        assert refused["status"] == "False"
        assert fingerprint(DEEPGRAM_KEY) in refused["message"]
        posted = await wait_until(
            lambda: events_with(api, "UpstreamAuthFailed"), what="UpstreamAuthFailed Event"
        )
        assert posted[0]["type"] == "Warning"
        ready = condition(await get(api, f"{BACKENDS}/aura-en"), "Ready")
        assert ready is not None and ready["status"] == "False"


async def _status_field(api: httpx.AsyncClient, field: str) -> Any:
    body = await get(api, f"{BACKENDS}/aura-en")
    return ((body or {}).get("status") or {}).get(field)
