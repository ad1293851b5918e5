"""A child the API refuses (422) becomes Degraded/InvalidSpec in the server's words, not a silent failure."""

from __future__ import annotations

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
    backend,
    condition,
    events_with,
    get,
    secret,
)
from tests.support.waiting import wait_until

REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
# Affinity is free-form in the CRD and passes the operator's own checks, but is not a NodeAffinity.
MALFORMED = {"scheduling": {"affinity": {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": "zone-a"}}}}}


async def degraded_with(api: httpx.AsyncClient, reason: str) -> dict[str, Any] | None:
    found = condition(await get(api, f"{BACKENDS}/aura-en"), "Degraded")
    return found if found and found["status"] == "True" and found["reason"] == reason else None


async def test_a_deployment_the_api_refuses_degrades_the_backend_with_the_servers_message(
    api: httpx.AsyncClient, cluster: Cluster, operator_running: OperatorFactory
) -> None:
    """kube-apiserver refuses the apply with 500 "failed to create typed patch object" (the body cannot
    be typed against the schema), the embedded API with 422: both are a spec problem, not a retry."""
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=2, **MALFORMED))).raise_for_status()
        degraded = await wait_until(lambda: degraded_with(api, "InvalidSpec"), what="InvalidSpec")
        assert "Deployment aura-en refused by the API server" in degraded["message"]
        refusal = "500 failed to create typed patch object" if cluster.is_real else "422"
        assert refusal in degraded["message"] and "nodeSelectorTerms" in degraded["message"]
        ready = condition(await get(api, f"{BACKENDS}/aura-en"), "Ready")
        assert ready is not None and ready["status"] == "False"
        events = await wait_until(lambda: events_with(api, "InvalidSpec"), what="the Warning Event")
        assert events[0]["type"] == "Warning" and "nodeSelectorTerms" in events[0]["message"]
        assert await get(api, f"{DEPLOYMENTS}/aura-en") is None
        fixed = {"spec": {"scheduling": {"affinity": None}}}
        (await api.patch(f"{BACKENDS}/aura-en", json=fixed, headers=MERGE)).raise_for_status()
        await wait_until(lambda: get(api, f"{DEPLOYMENTS}/aura-en"), what="the Deployment after the fix")


async def test_a_toleration_the_api_would_refuse_is_reported_before_anything_is_written(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    tolerate = {"scheduling": {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]}}
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=2, **tolerate))).raise_for_status()
        degraded = await wait_until(lambda: degraded_with(api, "InvalidSpec"), what="InvalidSpec")
        assert "tolerations[0].value: must be empty when operator is Exists" in degraded["message"]
        assert await get(api, "/api/v1/namespaces/voice/configmaps/aura-en-config") is None
