"""One scenario on both control planes, which must agree: the examples become a serving backend.

The embedded API stays as the zero-dependency quick start (a machine without Go); everything else runs
on the real control plane. Both fleets apply examples/ unchanged but for the test timings, converge,
speak through the Service, and the operator reports its fleet from the pods' /statusz. What a user
sees of that — the backend's status, its children, the pods and the Service's endpoints — must be
the same on both, except what is the cluster's own to choose (names, IPs, timestamps).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import conftest
from tests.e2e.cluster import Body, Cluster, collection, is_converged
from tests.e2e.conftest import LocalFleet, start_local_fleet
from tests.e2e.load import linear16
from tests.support.recognition import TEST_PHRASES, recognise
from ttsfleet import client
from ttsfleet.demo import condition
from ttsfleet.devcluster import fleet
from ttsfleet.protocol import Encoding

pytestmark = pytest.mark.slow

SELECTOR = {"labelSelector": f"app.kubernetes.io/instance={conftest.NAME}"}
CHILDREN = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
)


def probed_fleet(body: Body) -> bool:
    """Converged, every pod available, and the operator's /statusz probes reached each on the current config.

    Ready pods become available only after minReadySeconds; until then Available says
    PartiallyAvailable on either control plane, so both are compared once every pod is available.
    """
    status = body.get("status") or {}
    figures = status.get("fleet") or {}
    replicas = body["spec"]["replicas"]
    return (
        is_converged(body)
        and status.get("availableReplicas") == replicas
        and figures.get("podsReady") == replicas
        and figures.get("podsOnCurrentConfig") == replicas
    )


def ready_endpoints(slices: list[Body]) -> int:
    return sum(
        1
        for body in slices
        if body["metadata"]["labels"].get("kubernetes.io/service-name") == conftest.NAME
        for endpoint in body.get("endpoints") or ()
        if (endpoint.get("conditions") or {}).get("ready")
    )


async def observe(local_fleet: LocalFleet) -> dict[str, Any]:
    """What a user sees of the converged example backend, without what the cluster picks itself."""
    cluster = Cluster(local_fleet.state)
    try:
        body = await cluster.wait_backend(
            conftest.NAMESPACE,
            conftest.NAME,
            probed_fleet,
            conftest.CONVERGE_DEADLINE_S,
            "the operator's probes of every pod",
        )
        status = body["status"]
        pods = await cluster.items(collection("v1", "Pod", conftest.NAMESPACE), **SELECTOR)
        children = {
            kind: sorted(
                item["metadata"]["name"]
                for item in await cluster.items(collection(api, kind, conftest.NAMESPACE), **SELECTOR)
            )
            for api, kind in CHILDREN
        }
        slices = await cluster.items(collection("discovery.k8s.io/v1", "EndpointSlice", conftest.NAMESPACE))
        url = fleet.read_services(local_fleet.state_dir)[conftest.BACKEND]
        async with client.SpeakClient(
            url, conftest.TOKEN, linear16(conftest.SAMPLE_RATE, conftest.MODEL)
        ) as session:
            heard = [
                recognise(
                    (await session.speak(phrase)).audio, Encoding.LINEAR16, conftest.SAMPLE_RATE, TEST_PHRASES
                )
                for phrase in TEST_PHRASES[:2]
            ]
    finally:
        await cluster.aclose()
    return {
        "conditions": {
            kind: (condition(body, kind).get("status"), condition(body, kind).get("reason"))
            for kind in ("Ready", "Available", "Progressing", "Degraded", "CredentialsValid")
        },
        "replicas": [
            status.get(key) for key in ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas")
        ],
        "endpoint": status.get("endpoint"),
        "selector": status.get("selector"),
        "configHash": status.get("configHash"),
        "fleet": {
            key: status["fleet"].get(key) for key in ("podsProbed", "podsReady", "podsOnCurrentConfig")
        },
        "children": children,
        "pods ready": sorted(condition(pod, "Ready").get("status") for pod in pods),
        "pod template labels": sorted(
            {key for pod in pods for key in pod["metadata"]["labels"] if key != "pod-template-hash"}
        ),
        "ready endpoints": ready_endpoints(slices),
        "heard": heard,
    }


def test_the_embedded_api_and_the_real_control_plane_agree_on_the_examples(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for control_plane in ("embedded", "real"):  # one after the other: two cores
        state_dir: Path = tmp_path_factory.mktemp(f"agree-{control_plane}")
        with start_local_fleet(state_dir, control_plane) as local_fleet:
            seen[control_plane] = asyncio.run(observe(local_fleet))
    assert seen["real"]["heard"] == list(TEST_PHRASES[:2])
    assert seen["real"]["fleet"]["podsReady"] == 2, "the operator probed the real pods"
    assert seen["embedded"] == seen["real"]
