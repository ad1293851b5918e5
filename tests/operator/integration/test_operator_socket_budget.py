"""The fleet-wide socket budget divided among pods through the shares ConfigMap, re-divided as pods
come and go, without ever letting the pods together hold more than the budget, across a restart."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEEPGRAM_KEY,
    DEPLOYMENTS,
    MERGE,
    NAMESPACE,
    PODS,
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

SHARES = f"/api/v1/namespaces/{NAMESPACE}/configmaps/aura-en-shares"
BUDGET = 12


async def division(api: httpx.AsyncClient) -> dict[str, Any]:
    body = await get(api, SHARES)
    return dict(json.loads(body["data"]["shares.json"])) if body else {}


async def sockets(api: httpx.AsyncClient) -> dict[str, int]:
    pods = (await division(api)).get("pods") or {}
    return {pod: entry.get("upstream_sockets") for pod, entry in pods.items()}


def speaking(gateways: StandInGateways, pod: str, revision: int, open_sockets: int, config_hash: str) -> None:
    """The pod read `revision` and holds `open_sockets` upstream sockets."""
    gateways.report(pod, fingerprint=fingerprint(DEEPGRAM_KEY), config_hash=config_hash)
    gateways.reports[pod]["upstream"]["open_sockets"] = open_sockets
    gateways.reports[pod]["share"] = {"revision": revision}


async def shares_become(api: httpx.AsyncClient, wanted: dict[str, int]) -> dict[str, Any]:
    async def matches() -> dict[str, Any] | None:
        found = await division(api)
        pods = found.get("pods") or {}
        return found if {p: e.get("upstream_sockets") for p, e in pods.items()} == wanted else None

    found: dict[str, Any] = await wait_until(matches, what=f"socket shares {wanted}")
    assert sum(found["held"].values()) <= BUDGET
    return found


async def test_a_scale_change_re_divides_the_budget_without_exceeding_it(
    api: httpx.AsyncClient, gateways: StandInGateways, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    spec = backend(replicas=2, deepgram={"apiKeySecretRef": {"name": "deepgram"}, "socketBudget": BUDGET})
    # Both pods run before the backend exists, so the first division already counts both. Had the
    # operator divided between them, the first would hold all 12 until it reported reading a newer
    # revision, and the second would rightly wait at 0 (the scale-up below is that case, scripted).
    for pod in ("aura-en-a", "aura-en-b"):
        await ready_pod(api, pod)
    async with operator_running():
        (await api.post(BACKENDS, json=spec)).raise_for_status()
        deployment = await wait_until(lambda: get(api, f"{DEPLOYMENTS}/aura-en"), what="Deployment")
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        # kube-apiserver adds its default (defaultMode 420); the embedded API stores what was sent.
        shares_volume = volumes["shares"]["configMap"]
        assert (shares_volume["name"], shares_volume["optional"]) == ("aura-en-shares", True)
        status = await wait_until(lambda: _status(api), what="status with a config hash")
        config_hash = status["configHash"]
        two = await shares_become(api, {"aura-en-a": 6, "aura-en-b": 6})
        (await api.delete(SHARES)).raise_for_status()  # deleted by hand: the next reconcile writes it again
        (
            await api.patch(f"{BACKENDS}/aura-en", json={"spec": {"logLevel": "DEBUG"}}, headers=MERGE)
        ).raise_for_status()
        assert (await shares_become(api, {"aura-en-a": 6, "aura-en-b": 6}))["revision"] == two["revision"]
        for pod in ("aura-en-a", "aura-en-b"):
            speaking(gateways, pod, two["revision"], 6, config_hash)

        await ready_pod(api, "aura-en-c")  # a scale-up: the newcomer waits for the others' sockets
        three = await shares_become(api, {"aura-en-a": 4, "aura-en-b": 4, "aura-en-c": 0})
        stand_ins = ("aura-en-a", "aura-en-b", "aura-en-c")
        assert {pod: three["held"][pod] for pod in stand_ins} == {
            "aura-en-a": 6,
            "aura-en-b": 6,
            "aura-en-c": 0,
        }
        # On kube-apiserver the ReplicaSet controller's own pods are listed too: never Ready here, none holds.
        assert not any(count for pod, count in three["held"].items() if pod not in stand_ins)
        assert three["unlisted"]["upstream_sockets"] == 0
        divided = await wait_until(lambda: _event_naming(api, "aura-en-c 0"), what="a SharesDivided Event")
        assert (
            "upstream socket budget 12" in divided and "4 sockets still held above the new shares" in divided
        )

    async with operator_running():  # a restart forgets nothing the pods may still hold
        speaking(gateways, "aura-en-a", three["revision"], 4, config_hash)
        partly = await shares_become(api, {"aura-en-a": 4, "aura-en-b": 4, "aura-en-c": 2})
        for pod in ("aura-en-a", "aura-en-b"):
            speaking(gateways, pod, partly["revision"], 4, config_hash)
        speaking(gateways, "aura-en-c", partly["revision"], 2, config_hash)
        await shares_become(api, {"aura-en-a": 4, "aura-en-b": 4, "aura-en-c": 4})

        (await api.delete(f"{PODS}/aura-en-c")).raise_for_status()  # a scale-down
        await shares_become(api, {"aura-en-a": 6, "aura-en-b": 6})


async def test_the_per_token_rate_is_divided_among_pods_without_a_socket_budget(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        spec = backend(replicas=2, limits={"charsPerMinutePerToken": 9000})
        (await api.post(BACKENDS, json=spec)).raise_for_status()
        await wait_until(lambda: get(api, SHARES), what="the shares ConfigMap")
        for pod in ("aura-en-a", "aura-en-b", "aura-en-c"):
            await ready_pod(api, pod)

        async def per_token() -> dict[str, int] | None:
            found = await division(api)
            rates = {pod: e["chars_per_minute_per_token"] for pod, e in (found.get("pods") or {}).items()}
            return rates if len(rates) == 3 else None

        assert await wait_until(per_token, what="three pods counted") == {
            "aura-en-a": 3000,
            "aura-en-b": 3000,
            "aura-en-c": 3000,
        }
        found = await division(api)
        assert "upstream_sockets" not in found["unlisted"] and found["budget"]["upstream_sockets"] is None


async def _status(api: httpx.AsyncClient) -> dict[str, Any] | None:
    body = await get(api, f"{BACKENDS}/aura-en")
    found = dict((body or {}).get("status") or {})
    return found if found.get("configHash") else None


async def _event_naming(api: httpx.AsyncClient, text: str) -> str | None:
    """The message of a SharesDivided Event that names `text`, if one was posted."""
    messages = [event["message"] for event in await events_with(api, "SharesDivided")]
    return next((message for message in messages if text in message), None)
