"""What the operator accepts from a user's objects: only labelled Secrets, only values that can be a key,
and only specs whose types are what the CRD says, each refusal a condition that says what to do.
"""

from __future__ import annotations

from typing import Any

import httpx

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
    wait_until,
)
from ttsfleet.devcluster.apiserver import ApiServer


async def _condition_with(api: httpx.AsyncClient, kind: str, reason: str) -> dict[str, Any] | None:
    found = condition(await get(api, f"{BACKENDS}/aura-en"), kind)
    return found if found and found["reason"] == reason else None


async def test_an_unlabelled_key_secret_is_invisible_and_the_condition_says_to_label_it(
    api: httpx.AsyncClient, apiserver: ApiServer, operator_running: OperatorFactory
) -> None:
    (
        await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY, watch=False))
    ).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend())).raise_for_status()
        missing = await wait_until(
            lambda: _condition_with(api, "CredentialsValid", "DeepgramKeySecretMissing"), what="SecretMissing"
        )
        assert missing["status"] == "False"
        assert "kubectl label secret deepgram ttsfleet.io/watch=true" in missing["message"]
        assert condition(await get(api, f"{BACKENDS}/aura-en"), "Ready")["status"] == "False"
        # The operator never fetched the unlabelled Secret: it only lists Secrets carrying the label.
        secret_reads = [
            (r.verb, r.name)
            for r in apiserver.audit.records(resource_only=True)
            if r.resource == "secrets" and r.user_agent.startswith(("ttsfleet-operator/", "kopf/"))
        ]
        assert ("get", "deepgram") not in secret_reads
        labelled = {"metadata": {"labels": {"ttsfleet.io/watch": "true"}}}
        (await api.patch(f"{SECRETS}/deepgram", json=labelled, headers=MERGE)).raise_for_status()
        await wait_until(
            lambda: _condition_with(api, "CredentialsValid", "NotYetVerified"),
            what="the labelled Secret seen",
        )


async def test_a_key_no_header_can_carry_is_reported_not_left_unknown(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    (
        await api.post(SECRETS, json=secret("deepgram", "api-key", "k" * 500_000))
    ).raise_for_status()  # within a Secret's 1 MiB
    async with operator_running():
        (await api.post(BACKENDS, json=backend())).raise_for_status()
        malformed = await wait_until(
            lambda: _condition_with(api, "CredentialsValid", "DeepgramKeyKeyMalformed"), what="KeyMalformed"
        )
        assert malformed["status"] == "False"
        assert "larger than 8192 bytes" in malformed["message"]
        assert condition(await get(api, f"{BACKENDS}/aura-en"), "Ready")["status"] == "False"
        assert "kkkkkkkk" not in str(await get(api, f"{BACKENDS}/aura-en"))


async def test_replicas_as_a_string_is_refused_not_coerced(
    api: httpx.AsyncClient, operator_running: OperatorFactory
) -> None:
    (await api.post(SECRETS, json=secret("deepgram", "api-key", DEEPGRAM_KEY))).raise_for_status()
    async with operator_running():
        (await api.post(BACKENDS, json=backend(replicas="3"))).raise_for_status()
        degraded = await wait_until(
            lambda: _condition_with(api, "Degraded", "InvalidSpec"), what="InvalidSpec"
        )
        assert "spec.replicas" in degraded["message"]
        assert await get(api, f"{DEPLOYMENTS}/aura-en") is None
