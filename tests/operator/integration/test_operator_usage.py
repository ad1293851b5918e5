"""status.usage from the pods' billed-characters counters, kept by the operator apart from the
reconcile's status write, counted once across an operator restart and a pod's process restart."""

from __future__ import annotations

from typing import Any

import httpx

from tests.operator.integration import conftest as cluster  # type: ignore[attr-defined]
from tests.operator.integration.conftest import OperatorFactory, StandInGateways  # type: ignore[import-not-found]


def billed(gateways: StandInGateways, boot: str, characters: int) -> None:
    gateways.report("aura-en-a", fingerprint=cluster.fingerprint(cluster.DEEPGRAM_KEY), config_hash="")
    gateways.reports["aura-en-a"]["usage"] = {"boot": boot, "billed_characters": characters}


async def usage_with(api: httpx.AsyncClient, characters: int) -> dict[str, Any] | None:
    body = await cluster.get(api, f"{cluster.BACKENDS}/aura-en")
    usage = ((body or {}).get("status") or {}).get("usage") or {}
    return usage if (usage.get("lastHour") or {}).get("characters") == characters else None


async def test_usage_counts_each_character_once_across_restarts(
    api: httpx.AsyncClient, gateways: StandInGateways, operator_running: OperatorFactory
) -> None:
    (
        await api.post(cluster.SECRETS, json=cluster.secret("deepgram", "api-key", cluster.DEEPGRAM_KEY))
    ).raise_for_status()
    deepgram = {"apiKeySecretRef": {"name": "deepgram"}, "pricePerThousandCharacters": 0.02}
    billed(gateways, "boot-1", 1000)  # characters from before counting began are not the last hour's
    async with operator_running():
        (await api.post(cluster.BACKENDS, json=cluster.backend(deepgram=deepgram))).raise_for_status()
        await cluster.ready_pod(api, "aura-en-a")
        started = await cluster.wait_until(
            lambda: usage_with(api, 0), what="usage counting from the pod's counter"
        )
        assert started["counters"][0]["characters"] == 1000
        billed(gateways, "boot-1", 3500)
        usage = await cluster.wait_until(
            lambda: usage_with(api, 2500), what="2500 characters in the last hour"
        )
        assert usage["lastHour"]["estimatedCostUsd"] == 0.05 and usage["pricePerThousandCharacters"] == 0.02
        # A spec change makes the reconcile write the status: it must leave usage alone.
        patch = {"spec": {"cache": {"enabled": False}}}
        (await api.patch(f"{cluster.BACKENDS}/aura-en", json=patch, headers=cluster.MERGE)).raise_for_status()
        await cluster.wait_until(lambda: _observed(api), what="the change reconciled")
        assert await usage_with(api, 2500)

    billed(gateways, "boot-1", 4000)
    async with operator_running():  # a restart reads the counters back from status: 500 new, not 4000
        await cluster.wait_until(lambda: usage_with(api, 3000), what="3000 characters after the restart")
        billed(gateways, "boot-2", 250)  # the pod's process restarted: its counter began again
        await cluster.wait_until(
            lambda: usage_with(api, 3250), what="3250 characters after the pod restarted"
        )


async def _observed(api: httpx.AsyncClient) -> bool:
    body = await cluster.get(api, f"{cluster.BACKENDS}/aura-en") or {}
    return bool((body.get("status") or {}).get("observedGeneration") == body["metadata"]["generation"])
