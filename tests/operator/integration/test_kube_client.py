"""The operator's API client against the embedded API: requests beyond its in-flight limit wait their turn.

Embedded only: the embedded API (kmock underneath) can hold each request until the test releases it,
which shows how many were in flight at once; kube-apiserver answers at its own pace.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kmock
import kopf

from tests.support.waiting import wait_until
from ttsfleet.devcluster.apiserver import ApiServer, running_apiserver
from ttsfleet.operator import kube

CONFIGMAPS = kube.BY_KIND[("v1", "ConfigMap")]


class ConcurrencyProbe:
    """A reaction that holds each request until `release` is set and records how many it held at once."""

    def __init__(self) -> None:
        self.held = 0
        self.peak = 0
        self.release = asyncio.Event()

    async def __call__(self, request: kmock.Request) -> dict[str, Any]:
        self.held += 1
        self.peak = max(self.peak, self.held)
        try:
            await self.release.wait()
        finally:
            self.held -= 1
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": request.name}}


async def _gets(client: kube.KubeClient, count: int) -> list[kube.Body]:
    return await asyncio.gather(
        *(client.get(CONFIGMAPS, "default", f"config-{index}") for index in range(count))
    )


async def test_requests_beyond_the_limit_queue_and_all_of_them_are_answered() -> None:
    server: ApiServer
    async with running_apiserver() as server:
        probe = ConcurrencyProbe()
        server["get configmaps"] << probe
        client = kube.KubeClient.from_connection(kopf.ConnectionInfo(server=server.base_url), max_in_flight=4)
        try:
            answers = asyncio.ensure_future(_gets(client, 50))
            await wait_until(lambda: probe.held >= 4, what="four requests held")
            assert probe.held == 4  # the limit is reached ...
            probe.release.set()
            async with asyncio.timeout(20):
                bodies = await answers
        finally:
            await client.aclose()
    assert probe.peak == 4  # ... and never passed
    assert sorted(body["metadata"]["name"] for body in bodies) == sorted(f"config-{i}" for i in range(50))
