"""kmock's reactions on the embedded API: faults injected by tests answer before the resource API.

The API matches reactions without scanning its request history (`matching.py`); these check that the
answers are still kmock's: filters, slices, priorities and callables, with or without earlier requests.
"""

from __future__ import annotations

import httpx
import kmock

from tests.devcluster.conftest import CONFIGMAPS, DEPLOYMENTS, MERGE, deployment
from ttsfleet.devcluster.apiserver import ApiServer


async def _history(client: httpx.AsyncClient, requests: int, path: str = CONFIGMAPS) -> None:
    for _ in range(requests):
        assert (await client.get(path)).status_code == 200


async def test_a_filtered_fault_answers_only_its_verb_and_resource(
    apiserver: ApiServer, client: httpx.AsyncClient
) -> None:
    assert (await client.post(DEPLOYMENTS, json=deployment("web"))).status_code == 201
    await _history(client, 50)
    apiserver["patch deployments"] << 500
    patched = await client.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 3}}, headers=MERGE)
    assert patched.status_code == 500
    fetched = await client.get(f"{DEPLOYMENTS}/web")
    assert fetched.status_code == 200
    assert fetched.json()["spec"]["replicas"] == 1  # the fault answered instead of the API


async def test_a_sliced_fault_answers_its_first_request_and_then_steps_aside(
    apiserver: ApiServer, client: httpx.AsyncClient
) -> None:
    # A slice counts every request its filter matches, as in kmock, so the history is of other requests.
    await _history(client, 20, DEPLOYMENTS)
    apiserver["get configmaps"][:1] << 503
    apiserver["post deployments"][:2] << 429
    assert (await client.get(CONFIGMAPS)).status_code == 503
    assert (await client.get(CONFIGMAPS)).status_code == 200
    first, second, third = [
        (await client.post(DEPLOYMENTS, json=deployment(f"web-{n}"))).status_code for n in range(3)
    ]
    assert (first, second, third) == (429, 429, 201)


async def test_a_slice_counts_the_matching_requests_that_came_before_it(
    apiserver: ApiServer, client: httpx.AsyncClient
) -> None:
    await _history(client, 1)
    apiserver["get configmaps"][1:2] << 503  # the second GET of configmaps ever: the next one
    assert (await client.get(CONFIGMAPS)).status_code == 503
    assert (await client.get(CONFIGMAPS)).status_code == 200


async def test_the_higher_priority_reaction_wins_and_callables_filter_by_content(
    apiserver: ApiServer, client: httpx.AsyncClient
) -> None:
    (apiserver**10)["get configmaps"] << 418
    apiserver["get configmaps"] << 503
    apiserver[lambda request: request.params.get("labelSelector") == "tier=db"] << 409
    assert (await client.get(CONFIGMAPS)).status_code == 418
    assert (await client.get(DEPLOYMENTS, params={"labelSelector": "tier=db"})).status_code == 409
    assert (await client.get(DEPLOYMENTS)).status_code == 200


async def test_requests_seen_by_a_reaction_can_be_asserted_as_with_kmock(
    apiserver: ApiServer, client: httpx.AsyncClient
) -> None:
    refused = apiserver["delete deployments"] << 403
    assert (await client.post(DEPLOYMENTS, json=deployment("web"))).status_code == 201
    assert (await client.delete(f"{DEPLOYMENTS}/web")).status_code == 403
    assert [request.method for request in refused] == [kmock.method.DELETE]
    assert (await client.get(f"{DEPLOYMENTS}/web")).status_code == 200
