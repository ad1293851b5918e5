"""kopf peering on both control planes: the chart's peering CRDs, one active operator, one standing by.

The chart runs the operator with `--peering ttsfleet` and ships kopf's peering CRDs; kopf never creates
its peering object, so the chart does (one KopfPeering per served namespace in namespaced mode). Here
two operators share that object: the one with the lower priority pauses until the other leaves.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.operator.integration.clusters import wait_until_served
from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEEPGRAM_KEY,
    NAMESPACE,
    SECRETS,
    OperatorFactory,
    backend,
    get,
    secret,
)
from tests.support.waiting import wait_until
from ttsfleet.operator import running

PEERING_CRDS = Path(__file__).parents[3] / "charts" / "ttsfleet" / "crds" / "kopf-peering.yaml"
PEERING = "ttsfleet"
PEERINGS = f"/apis/kopf.dev/v1/namespaces/{NAMESPACE}/kopfpeerings"
PAUSING = "Pausing operations in favour of"  # what kopf logs when a peer has a higher priority
RESUMING = "Resuming operations after the pause"  # what kopf logs once it has seen the peering alone


async def install_peering(api: httpx.AsyncClient) -> None:
    """Apply the chart's peering CRDs and the KopfPeering the chart renders for a served namespace."""
    for document in yaml.safe_load_all(PEERING_CRDS.read_text()):
        if document:
            created = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=document)
            # The real cluster outlives a test: an earlier test may have installed them already.
            assert created.status_code in (201, 409), created.text
            await wait_until_served(api, document)
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}}
    (await api.post(PEERINGS, json=peering)).raise_for_status()


def reconciles(assembly: running.Assembly) -> float:
    total = 0.0
    for metric in assembly.runtime.metrics.reconciles.collect():
        total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


async def peers(api: httpx.AsyncClient) -> dict[str, Any]:
    body = await get(api, f"{PEERINGS}/{PEERING}")
    return dict((body or {}).get("status") or {})


async def reconciled(api: httpx.AsyncClient, name: str) -> bool:
    body = await get(api, f"{BACKENDS}/{name}")
    status = (body or {}).get("status") or {}
    return bool(body) and status.get("observedGeneration") == body["metadata"]["generation"]


async def test_a_lower_priority_operator_stands_by_and_takes_over_when_the_other_leaves(
    api: httpx.AsyncClient, operator_running: OperatorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kopf")
    await install_peering(api)
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running(peering_name=PEERING, priority=50) as standby:
        # kopf starts paused and logs only a change: a standby whose first look at the peering already
        # shows the higher priority stays paused without a word. So the standby first runs alone
        # (started is not enough: its peering watch may come up after the other operator's).
        await wait_until(lambda: RESUMING in caplog.text, what="the standby running alone")
        async with operator_running(peering_name=PEERING, priority=100) as active:
            await wait_until(lambda: _count(api, 2), what="both operators in the peering object")
            # Only the lower priority pauses; until it has seen its peer, it would still reconcile.
            await wait_until(lambda: PAUSING in caplog.text, what="the standby to pause")
            (await api.post(BACKENDS, json=backend("first"))).raise_for_status()
            await wait_until(lambda: reconciled(api, "first"), what="the active operator's reconcile")
            # The status patch lands before the handler returns and its reconcile is counted.
            await wait_until(lambda: reconciles(active) >= 1, what="the active operator's count")
            assert reconciles(standby) == 0  # paused in favour of the higher priority
        left = time.monotonic()
        (await api.post(BACKENDS, json=backend("second"))).raise_for_status()
        await wait_until(lambda: reconciled(api, "second"), what="the standby taking over")
        failover_s = time.monotonic() - left
        await wait_until(lambda: reconciles(standby) >= 1, what="the standby's count")
        # A graceful exit removes the leaver's record at once: no wait for its 60 s lifetime.
        assert failover_s < 5, failover_s
    assert await peers(api) == {}  # both left cleanly


async def _count(api: httpx.AsyncClient, expected: int) -> bool:
    return len(await peers(api)) >= expected
