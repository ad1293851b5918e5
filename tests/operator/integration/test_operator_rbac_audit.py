"""Every API call the operator makes is granted by the chart's RBAC, and the chart grants nothing unused.

One scenario exercises every code path that talks to the API (create with every optional child,
prune them, rotate the key, post Events, delete); the audit log (the embedded API's, or kube-apiserver's
for the operator's ServiceAccount) records each call as (verb, group, resource/subresource, namespace),
which is checked against `helm template` of the chart in namespaced mode (the stricter one: a Role per
watched namespace plus a small ClusterRole).
"""

from __future__ import annotations

import base64

import httpx

from tests.operator.integration.clusters import Cluster
from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEEPGRAM_KEY,
    MERGE,
    NAMESPACE,
    SECRETS,
    OperatorFactory,
    backend,
    get,
    secret,
)
from tests.operator.integration.test_operator_optional_kinds import (  # type: ignore[import-not-found]
    install_crd,
)
from tests.support.helm import NAMESPACED_VALUES, RELEASE, helm, operator_grants, render
from tests.support.monitoring import SERVICE_MONITOR_CRD
from tests.support.waiting import wait_until

__all__ = ["helm"]  # the fixture, imported for this module's tests
SERVICE_ACCOUNT = f"{RELEASE}-ttsfleet"
Grant = tuple[str, str, str]
# Granted on purpose although no scenario here calls them, each with its reason.
_CHILD_KINDS = (
    ("", "configmaps"),
    ("", "services"),
    ("apps", "deployments"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "networkpolicies"),
    ("monitoring.coreos.com", "servicemonitors"),
)
ALLOWED_UNUSED: dict[Grant, str] = {
    # Every child kind may be patched or pruned when rendering changes; one scenario cannot hit all.
    # Children are created by server-side apply (a PATCH); `create` stays granted for API servers
    # and admission webhooks that check it on an apply that creates.
    **{
        (group, plural, verb): "apply/prune of any child"
        for group, plural in _CHILD_KINDS
        for verb in ("patch", "delete", "create")
    },
    # Cluster mode scans CRDs; namespaced mode (this test) disables scanning.
    **{
        ("apiextensions.k8s.io", "customresourcedefinitions", verb): "cluster-mode scan"
        for verb in ("list", "watch")
    },
    # Peering is on in the chart but standalone in tests.
    **{("kopf.dev", "kopfpeerings", verb): "kopf peering" for verb in ("list", "watch", "patch")},
    # Not a call: admission checks it on every child whose ownerReference blocks owner deletion.
    ("ttsfleet.io", "ttsbackends/finalizers", "update"): "OwnerReferencesPermissionEnforcement",
}


async def _absent(api: httpx.AsyncClient, path: str) -> bool:
    return await get(api, path) is None


async def run_every_path(api: httpx.AsyncClient, operator_running: OperatorFactory) -> None:
    await install_crd(api, SERVICE_MONITOR_CRD)
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    tokens = secret("fleet-tokens", "tokens", "token-a")
    (await api.post(SECRETS, json=tokens)).raise_for_status()
    everything = backend(
        autoscaling={"minReplicas": 2, "maxReplicas": 4, "targetActiveStreamsPerPod": 20},
        auth={"clientTokensSecretRef": {"name": "fleet-tokens"}},
        networkPolicy={"enabled": True},
        monitoring={"serviceMonitor": {"enabled": True}},
    )
    smon = f"/apis/monitoring.coreos.com/v1/namespaces/{NAMESPACE}/servicemonitors/aura-en"
    async with operator_running():
        (await api.post(BACKENDS, json=everything)).raise_for_status()
        await wait_until(lambda: get(api, smon), what="every child")
        shrink = {
            "spec": {
                "autoscaling": None,
                "replicas": 1,
                "networkPolicy": {"enabled": False},
                "monitoring": {"serviceMonitor": {"enabled": False}},
            }
        }
        (await api.patch(f"{BACKENDS}/aura-en", json=shrink, headers=MERGE)).raise_for_status()
        await wait_until(lambda: _absent(api, smon), what="optional children pruned")
        rotated = {"data": {"api-key": base64.b64encode(b"dg-key-two").decode()}}
        (await api.patch(f"{SECRETS}/deepgram", json=rotated, headers=MERGE)).raise_for_status()

        async def rotated_event() -> bool:
            items = (await api.get(f"/api/v1/namespaces/{NAMESPACE}/events")).json()["items"]
            return any(event["reason"] == "CredentialRotated" for event in items)

        await wait_until(rotated_event, what="CredentialRotated")
        (await api.delete(f"{BACKENDS}/aura-en")).raise_for_status()
        # kopf releases its finalizer; collecting the children is the garbage collector's part, not a call.
        await wait_until(lambda: _absent(api, f"{BACKENDS}/aura-en"), what="deletion")


def used_grants(cluster: Cluster) -> dict[str, set[Grant]]:
    """What the operator did, by scope ("" = cluster-wide request), as RBAC would check it."""
    used: dict[str, set[Grant]] = {}
    for record in cluster.operator_calls():
        resource = f"{record.resource}/{record.subresource}" if record.subresource else record.resource
        used.setdefault(record.namespace, set()).add((record.api_group, resource, record.verb))
    return used


def is_granted(grant: Grant, scope: str, granted: dict[str, set[Grant]]) -> bool:
    # A ClusterRole (scope "") grants in every namespace; a Role only in its own.
    return grant in granted.get("", set()) or (scope != "" and grant in granted.get(scope, set()))


async def test_chart_rbac_grants_every_call_the_operator_makes(
    api: httpx.AsyncClient, cluster: Cluster, operator_running: OperatorFactory, helm: object
) -> None:
    await run_every_path(api, operator_running)
    granted = operator_grants(render(helm, [NAMESPACED_VALUES]), SERVICE_ACCOUNT)  # type: ignore[arg-type]
    used = used_grants(cluster)
    missing = sorted(
        (scope or "<cluster>", *grant)
        for scope, grants in used.items()
        for grant in grants
        if not is_granted(grant, scope, granted)
    )
    assert not missing, f"the operator made calls the chart does not grant: {missing}"


async def test_chart_rbac_grants_nothing_the_operator_leaves_unused(
    api: httpx.AsyncClient, cluster: Cluster, operator_running: OperatorFactory, helm: object
) -> None:
    await run_every_path(api, operator_running)
    granted = operator_grants(render(helm, [NAMESPACED_VALUES]), SERVICE_ACCOUNT)  # type: ignore[arg-type]
    everything_used = {grant for grants in used_grants(cluster).values() for grant in grants}
    unused = sorted(
        {grant for grants in granted.values() for grant in grants} - everything_used - set(ALLOWED_UNUSED)
    )
    assert not unused, f"the chart grants what the operator never uses: {unused}"
