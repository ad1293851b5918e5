"""Deepgram key rotation through a labelled Secret: reload mode reports progress, restart mode rolls pods."""

from __future__ import annotations

import base64
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
    StandInGateways,
    backend,
    events_with,
    fingerprint,
    get,
    ready_pod,
    secret,
)
from tests.support.waiting import wait_until
from ttsfleet.operator.rendering import meta

NEW_KEY = "dg-key-two"


async def rotate(api: httpx.AsyncClient) -> None:
    data = {"data": {"api-key": base64.b64encode(NEW_KEY.encode()).decode()}}
    (await api.patch(f"{SECRETS}/deepgram", json=data, headers=MERGE)).raise_for_status()


async def status_of(api: httpx.AsyncClient) -> dict[str, Any]:
    body = await get(api, f"{BACKENDS}/aura-en")
    return dict((body or {}).get("status") or {})


async def test_reload_rotation_reports_until_every_pod_uses_the_new_key(
    api: httpx.AsyncClient, gateways: StandInGateways, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas=2))).raise_for_status()
        first = await wait_until(lambda: status_of(api), what="status")
        config_hash = first["configHash"]
        for pod in ("aura-en-a", "aura-en-b"):
            gateways.report(pod, fingerprint=fingerprint(DEEPGRAM_KEY), config_hash=config_hash)
            await ready_pod(api, pod)

        async def all_on(key: str) -> bool:
            credentials = (await status_of(api)).get("credentials") or {}
            return credentials.get("complete") is True and credentials.get(
                "currentFingerprint"
            ) == fingerprint(key)

        await wait_until(lambda: all_on(DEEPGRAM_KEY), what="both pods on the first key")
        template_before = (await get(api, f"{DEPLOYMENTS}/aura-en"))["spec"]["template"]

        await rotate(api)
        rotated = await wait_until(lambda: events_with(api, "CredentialRotated"), what="CredentialRotated")
        assert fingerprint(NEW_KEY) in rotated[0]["message"]

        async def stale() -> bool:
            credentials = (await status_of(api)).get("credentials") or {}
            return credentials.get("staleFingerprints") == [fingerprint(DEEPGRAM_KEY)]

        await wait_until(stale, what="the old key reported stale")
        assert (await get(api, f"{DEPLOYMENTS}/aura-en"))["spec"]["template"] == template_before  # no rollout
        for pod in ("aura-en-a", "aura-en-b"):  # the pods re-read the mounted key
            gateways.report(pod, fingerprint=fingerprint(NEW_KEY), config_hash=config_hash)
        await wait_until(lambda: all_on(NEW_KEY), what="both pods on the new key")
        complete = await wait_until(
            lambda: events_with(api, "CredentialRotationComplete"), what="CredentialRotationComplete"
        )
        assert fingerprint(DEEPGRAM_KEY) in complete[0]["message"]


async def test_restart_rotation_puts_the_new_secret_hash_on_the_pod_template(
    api: httpx.AsyncClient, cluster: Cluster, operator_running: OperatorFactory
) -> None:
    """On kube-apiserver the real Deployment controller then starts the rolling restart: a second
    ReplicaSet, for the new template."""
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(rotation={"strategy": "restart"}))).raise_for_status()

        async def secret_hash() -> str | None:
            deployment = await get(api, f"{DEPLOYMENTS}/aura-en")
            annotations = ((deployment or {}).get("spec") or {}).get("template", {}).get("metadata", {})
            return (annotations.get("annotations") or {}).get(meta.SECRET_HASH_ANNOTATION)

        assert await wait_until(secret_hash, what="secret hash") == fingerprint(DEEPGRAM_KEY)
        await rotate(api)
        await wait_until(
            lambda: _equals(secret_hash, fingerprint(NEW_KEY)), what="new secret hash (rolling restart)"
        )
        await wait_until(lambda: events_with(api, "CredentialRotated"), what="CredentialRotated")
        if cluster.is_real:
            await wait_until(lambda: _replica_set_hashes(api, 2), 30.0, "a ReplicaSet for each template")


async def _replica_set_hashes(api: httpx.AsyncClient, count: int) -> bool:
    listed = (await api.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets")).json()["items"]
    hashes = {
        ((item["spec"]["template"].get("metadata") or {}).get("annotations") or {}).get(
            meta.SECRET_HASH_ANNOTATION
        )
        for item in listed
        if any(owner["name"] == "aura-en" for owner in item["metadata"].get("ownerReferences") or ())
    }
    return len(hashes) >= count


async def _equals(read: Any, expected: str) -> bool:
    return bool(await read() == expected)


async def test_a_deleted_key_secret_is_reported_once_not_patched_on_every_tick(
    api: httpx.AsyncClient, gateways: StandInGateways, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running() as assembly:
        (await api.post(BACKENDS, json=backend(replicas=1))).raise_for_status()
        first = await wait_until(lambda: status_of(api), what="status")
        gateways.report("aura-en-a", fingerprint=fingerprint(DEEPGRAM_KEY), config_hash=first["configHash"])
        await ready_pod(api, "aura-en-a")

        async def fingerprint_shown() -> bool:
            return bool(((await status_of(api)).get("credentials") or {}).get("currentFingerprint"))

        await wait_until(fingerprint_shown, what="the key's fingerprint in status")
        (await api.delete(f"{SECRETS}/deepgram")).raise_for_status()

        async def fingerprint_gone() -> bool:
            status = await status_of(api)
            return "currentFingerprint" not in (status.get("credentials") or {})

        await wait_until(fingerprint_gone, what="the vanished fingerprint removed from status")
        metrics = assembly.runtime.metrics
        # The Secret's deletion event and the probe timer can each report the loss; let both land (two
        # ticks after the fingerprint left) before counting, then no tick may patch again.
        seen = metrics.status_refreshes._value.get()
        await wait_until(lambda: metrics.status_refreshes._value.get() >= seen + 2, what="two probe ticks")
        writes, ticks = metrics.status_writes._value.get(), metrics.status_refreshes._value.get()
        await wait_until(lambda: metrics.status_refreshes._value.get() >= ticks + 5, what="five probe ticks")
        assert metrics.status_writes._value.get() == writes, "the status was patched again with nothing new"
