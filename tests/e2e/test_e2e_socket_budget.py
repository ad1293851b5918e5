"""On the local fleet: pods share the backend's upstream socket budget through a scale change while
agents speak, and the emulator's peak of open sockets never passes it.

A module of its own: it starts its own fleet, and leaves the backend budgeted for nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import BACKENDS, Body, Cluster
from tests.e2e.conftest import CONVERGE_DEADLINE_S, NAME, NAMESPACE, LocalFleet
from tests.e2e.load import SpeakingLoad
from tests.e2e.test_e2e_fleet import converged_after, is_ready_pod, wait_for_pods, while_speaking
from tests.support.waiting import eventually

# A whole load cycle or a fleet of its own: longer than the suite-wide 120 s, bounded all the same.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BACKEND_PATH = f"{BACKENDS.format(namespace=NAMESPACE)}/{NAME}"
CONFIG_MAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
BUDGET = 6


def emulator_url(local_fleet: LocalFleet) -> str:
    assert local_fleet.state.upstream_url is not None
    return local_fleet.state.upstream_url.replace("ws://", "http://", 1) + "/_emulator"


def emulator_stats(local_fleet: LocalFleet) -> dict[str, Any]:
    return dict(httpx.get(f"{emulator_url(local_fleet)}/stats", timeout=5.0).json())


def socket_shares(config_maps: list[Body]) -> dict[str, int]:
    """The socket shares in the backend's shares ConfigMap, by pod."""
    for body in config_maps:
        division = json.loads(body["data"]["shares.json"])
        return {pod: entry.get("upstream_sockets") for pod, entry in (division.get("pods") or {}).items()}
    return {}


async def budgeted_and_ready(cluster: Cluster, replicas: int, generation: int) -> None:
    """The backend converged past `generation` on `replicas` ready pods, the budget divided evenly among
    exactly them."""
    await cluster.wait_backend(
        NAMESPACE, NAME, converged_after(generation), CONVERGE_DEADLINE_S, "the backend converged"
    )
    pods = await wait_for_pods(
        cluster, f"{replicas} ready pods", lambda pods: len(pods) == replicas and all(map(is_ready_pod, pods))
    )
    names = {pod["metadata"]["name"] for pod in pods}
    even = sorted([BUDGET // replicas + (i < BUDGET % replicas) for i in range(replicas)])

    def divided(config_maps: list[Body]) -> bool:
        shares = socket_shares(config_maps)
        return set(shares) == names and sorted(shares.values()) == even

    await cluster.wait(
        CONFIG_MAPS,
        divided,
        CONVERGE_DEADLINE_S,
        f"the budget divided {even} among {sorted(names)}",
        fieldSelector=f"metadata.name={NAME}-shares",
    )


async def changed(cluster: Cluster, path: str, patch: Body) -> int:
    """Patch the backend (or its scale); the generation it had before."""
    before = await cluster.get(BACKEND_PATH)
    assert before is not None
    await cluster.patch(path, patch)
    return int(before["metadata"]["generation"])


async def test_pods_share_the_socket_budget_through_a_scale_change(
    local_fleet: LocalFleet, cluster: Cluster
) -> None:
    budget = {"spec": {"deepgram": {"socketBudget": BUDGET}}}
    await budgeted_and_ready(cluster, 2, await changed(cluster, BACKEND_PATH, budget))
    # Sockets above the lowered budget close as their utterances end: from here on it holds.
    await eventually(
        lambda: emulator_stats(local_fleet)["open_sockets"] <= BUDGET, 30.0, "old sockets closed"
    )
    httpx.post(f"{emulator_url(local_fleet)}/reset", timeout=5.0).raise_for_status()

    async def scale_up_and_down(load: SpeakingLoad) -> None:
        for replicas in (3, 2):
            scale = {"spec": {"replicas": replicas}}
            await budgeted_and_ready(
                cluster, replicas, await changed(cluster, f"{BACKEND_PATH}/scale", scale)
            )
            await load.completed_at_least(6)

    report = await while_speaking(local_fleet, scale_up_and_down)
    stats = emulator_stats(local_fleet)
    assert stats["peak_open_sockets"] <= BUDGET, stats
    assert report.completed > 12 and not report.failures
