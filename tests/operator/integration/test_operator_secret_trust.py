"""What the operator accepts from a user's objects: only labelled Secrets, only values that can be a key,
and only specs whose types are what the CRD says, each refusal a condition that says what to do.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.operator.integration.clusters import Cluster
from tests.operator.integration.conftest import (  # type: ignore[import-not-found]
    BACKENDS,
    DEEPGRAM_KEY,
    DEPLOYMENTS,
    MERGE,
    SECRETS,
    OperatorFactory,
    backend,
    condition,
    get,
    secret,
    with_condition,
)
from tests.operator.integration.test_operator_lifecycle import created  # type: ignore[import-not-found]
from tests.support.waiting import wait_until


async def _credentials_refused(api: httpx.AsyncClient, key_secret: dict[str, Any], reason: str) -> str:
    """Create the key Secret and a backend; wait for CredentialsValid=False with `reason`, check Ready
    follows, and return the condition's message."""
    (await api.post(SECRETS, json=key_secret)).raise_for_status()
    (await api.post(BACKENDS, json=backend())).raise_for_status()
    refused = await wait_until(lambda: with_condition(api, "CredentialsValid", reason), what=reason)
    assert refused["status"] == "False"
    assert condition(await get(api, f"{BACKENDS}/aura-en"), "Ready")["status"] == "False"
    return str(refused["message"])


async def test_an_unlabelled_key_secret_is_invisible_and_the_condition_says_to_label_it(
    api: httpx.AsyncClient, cluster: Cluster, operator_running: OperatorFactory
) -> None:
    unlabelled = secret("deepgram", "api-key", DEEPGRAM_KEY, watch=False)
    async with operator_running():
        message = await _credentials_refused(api, unlabelled, "DeepgramKeySecretMissing")
        assert "kubectl label secret deepgram ttsfleet.io/watch=true" in message
        # The operator never fetched the unlabelled Secret: it only lists Secrets carrying the label.
        calls = cluster.operator_calls()
        secret_reads = [(call.verb, call.name) for call in calls if call.resource == "secrets"]
        assert ("get", "deepgram") not in secret_reads
        labelled = {"metadata": {"labels": {"ttsfleet.io/watch": "true"}}}
        (await api.patch(f"{SECRETS}/deepgram", json=labelled, headers=MERGE)).raise_for_status()
        await wait_until(
            lambda: with_condition(api, "CredentialsValid", "NotYetVerified"),
            what="the labelled Secret seen",
        )


async def test_a_key_no_header_can_carry_is_reported_not_left_unknown(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    huge = secret("deepgram", "api-key", "k" * 500_000)  # within a Secret's 1 MiB
    async with operator_running():
        message = await _credentials_refused(api, huge, "DeepgramKeyKeyMalformed")
        assert "larger than 8192 bytes" in message
        assert "kkkkkkkk" not in str(await get(api, f"{BACKENDS}/aura-en"))


async def unchecked_schema(api: httpx.AsyncClient) -> None:
    """Serve the CRD with an open schema, as an API server that does not enforce ours would."""
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/ttsbackends.ttsfleet.io"
    crd = (await api.get(path)).json()
    open_schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    for version in crd["spec"]["versions"]:
        version["schema"] = {"openAPIV3Schema": open_schema}
    (await api.put(path, json=crd)).raise_for_status()


async def test_a_number_as_a_string_is_refused_not_coerced(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    """A byte count written as a string. (Not `replicas`: kube-apiserver holds the /scale subresource's
    specReplicasPath to an integer even under an open schema, so only the embedded API admits that.)"""
    quoted = backend(replicas=2, cache={"maxBytes": "1024"})
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    assert (await api.post(BACKENDS, json=quoted)).status_code == 422  # the schema says no
    await unchecked_schema(api)  # an API server that does not hold the object to it still gets an answer
    async with operator_running():
        await wait_until(lambda: created(api, quoted), 30.0, "the backend admitted")
        degraded = await wait_until(
            lambda: with_condition(api, "Degraded", "InvalidSpec"), what="InvalidSpec"
        )
        assert "spec.cache.maxBytes" in degraded["message"]
        assert await get(api, f"{DEPLOYMENTS}/aura-en") is None


async def test_replicas_as_a_string_is_refused_even_under_an_open_schema(api: httpx.AsyncClient) -> None:
    """The /scale subresource's replicas path must hold an integer whatever the schema says: both control
    planes refuse it once the open schema is served (a number elsewhere as a string passes by then)."""
    await unchecked_schema(api)
    quoted = backend("quoted", replicas=2, cache={"maxBytes": "1024"})
    await wait_until(lambda: created(api, quoted), 30.0, "the open schema served")
    refused = await api.post(BACKENDS, json=backend(replicas="3"))
    assert refused.status_code == 422, refused.text
    assert "spec.replicas" in refused.json()["message"]
