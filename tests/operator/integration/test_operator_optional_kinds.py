"""Optional kinds: a cluster without the Prometheus Operator, or a chart that does not grant ServiceMonitors.

The backend still reconciles and becomes Ready; the missing ServiceMonitor is reported once (Degraded
with reason OptionalKindUnavailable, one Warning Event), and pruning never trips over the kind.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.operator.integration.clusters import Cluster, wait_until_served
from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEEPGRAM_KEY,
    DEPLOYMENTS,
    MERGE,
    NAMESPACE,
    SECRETS,
    OperatorFactory,
    Rollouts,
    apply_rbac,
    backend,
    condition,
    events_with,
    get,
    secret,
)
from tests.support.helm import NAMESPACED_VALUES, rbac_objects, render
from tests.support.monitoring import CRD_PATH, SERVICE_MONITOR_CRD
from tests.support.waiting import wait_until

SMON = "/apis/monitoring.coreos.com/v1/namespaces/voice/servicemonitors/aura-en"
WITH_MONITOR = {"monitoring": {"serviceMonitor": {"enabled": True}}}


async def install_crd(api: httpx.AsyncClient, crd: dict[str, Any]) -> None:
    """Apply a CRD as a cluster admin would and wait until its kind is served."""
    (await api.post(CRD_PATH, json=crd)).raise_for_status()
    await wait_until_served(api, crd)


async def ready_with(api: httpx.AsyncClient, kind: str, reason: str) -> dict[str, Any] | None:
    body = await get(api, f"{BACKENDS}/aura-en")
    ready, found = condition(body, "Ready"), condition(body, kind)
    if ready and ready["status"] == "True" and found and found["reason"] == reason:
        return body
    return None


async def test_without_the_prometheus_operator_the_backend_is_ready_and_says_why(
    api: httpx.AsyncClient, operator_running: OperatorFactory, rollouts: Rollouts
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running() as assembly:
        (await api.post(BACKENDS, json=backend(replicas=2, **WITH_MONITOR))).raise_for_status()
        await wait_until(lambda: get(api, f"{DEPLOYMENTS}/aura-en"), what="Deployment")
        await rollouts.complete()
        body = await wait_until(
            lambda: ready_with(api, "Degraded", "OptionalKindUnavailable"), what="Ready, monitor reported"
        )
        degraded = condition(body, "Degraded")
        assert degraded is not None and degraded["status"] == "True"
        assert "ServiceMonitor aura-en" in degraded["message"] and "404" in degraded["message"]
        await wait_until(lambda: events_with(api, "OptionalKindUnavailable"), what="the Warning Event")
        refreshes = assembly.runtime.metrics.status_refreshes
        ticks = refreshes._value.get()
        await wait_until(lambda: refreshes._value.get() >= ticks + 3, what="three more probe ticks")
        warnings = await events_with(api, "OptionalKindUnavailable")
        assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
        # Once the CRDs are installed, the next reconcile writes the ServiceMonitor and clears the reason.
        await install_crd(api, SERVICE_MONITOR_CRD)
        bump = {"metadata": {"annotations": {"example.com/touched": "1"}}, "spec": {"replicas": 3}}
        (await api.patch(f"{BACKENDS}/aura-en", json=bump, headers=MERGE)).raise_for_status()
        await wait_until(lambda: get(api, SMON), what="the ServiceMonitor once its CRD exists")


async def test_a_forbidden_service_monitor_kind_skips_it_and_pruning(
    api: httpx.AsyncClient,
    cluster: Cluster,
    operator_running: OperatorFactory,
    rollouts: Rollouts,
    helm: Any,
) -> None:
    await install_crd(api, SERVICE_MONITOR_CRD)
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    without = render(helm, [NAMESPACED_VALUES], ["rbac.serviceMonitors=false"])
    await apply_rbac(cluster, rbac_objects(without, [NAMESPACE]))
    async with operator_running():
        # Not asked for: pruning would GET the kind, and may not.
        (await api.post(BACKENDS, json=backend(replicas=2))).raise_for_status()
        await wait_until(lambda: get(api, f"{DEPLOYMENTS}/aura-en"), what="Deployment")
        await rollouts.complete()
        body = await wait_until(lambda: ready_with(api, "Degraded", "AsExpected"), what="Ready")
        assert condition(body, "Degraded")["status"] == "False"
        # Asked for: reported, the rest still reconciles.
        (
            await api.patch(f"{BACKENDS}/aura-en", json={"spec": WITH_MONITOR}, headers=MERGE)
        ).raise_for_status()
        body = await wait_until(
            lambda: ready_with(api, "Degraded", "OptionalKindUnavailable"), what="the forbidden monitor"
        )
        assert "403" in condition(body, "Degraded")["message"]
