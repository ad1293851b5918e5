"""kopf's timer finalizer: deletion waits for a running operator, and the documented uninstall order works.

docs/operations.md, "Uninstall": delete the TTSBackends, then uninstall the chart (the operator), then
delete the CRD. The other order leaves backends (and their namespaces) waiting on a finalizer nobody
will remove.
"""

from __future__ import annotations

import httpx

from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEEPGRAM_KEY,
    DEPLOYMENTS,
    SECRETS,
    OperatorFactory,
    backend,
    get,
    secret,
)
from tests.support.waiting import wait_until

KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/ttsbackends.ttsfleet.io"


async def finalized(api: httpx.AsyncClient) -> bool:
    body = await get(api, f"{BACKENDS}/aura-en")
    return body is not None and KOPF_FINALIZER in (body["metadata"].get("finalizers") or ())


async def absent(api: httpx.AsyncClient, path: str) -> bool:
    return await get(api, path) is None


async def test_a_backend_deleted_while_the_operator_is_down_waits_for_its_return(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=1))).raise_for_status()
        await wait_until(lambda: finalized(api), what="kopf's finalizer (the probe timer needs it)")
    (await api.delete(f"{BACKENDS}/aura-en")).raise_for_status()
    waiting = await get(api, f"{BACKENDS}/aura-en")
    assert waiting is not None and waiting["metadata"].get("deletionTimestamp"), "deleted at once"
    async with operator_running():
        await wait_until(
            lambda: absent(api, f"{BACKENDS}/aura-en"), what="deletion once the operator is back"
        )


async def test_the_documented_uninstall_order_leaves_nothing_behind(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=1))).raise_for_status()
        await wait_until(lambda: get(api, f"{DEPLOYMENTS}/aura-en"), what="the Deployment")
        # 1. kubectl delete ttsb --all -A (the operator still runs and releases its finalizer)
        (await api.delete(BACKENDS)).raise_for_status()
        await wait_until(lambda: absent(api, f"{BACKENDS}/aura-en"), what="the backend gone")
        await wait_until(lambda: absent(api, f"{DEPLOYMENTS}/aura-en"), what="its children collected")
    # 2. helm uninstall (the operator stops)  3. kubectl delete crd
    (await api.delete(CRD)).raise_for_status()
    await wait_until(lambda: absent(api, CRD), what="the CRD gone")

    # kube-apiserver stops serving a deleted CRD's resource a moment after the CRD object is gone.
    async def resource_unserved() -> bool:
        return (await api.get(BACKENDS)).status_code == 404

    await wait_until(resource_unserved, what="the ttsbackends resource no longer served")
