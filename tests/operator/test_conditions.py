"""The five conditions: what each says in each situation, and when lastTransitionTime moves."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ttsfleet.operator import api, conditions
from ttsfleet.operator.facts import DeploymentFacts, FleetFacts, SecretFacts, SecretState

StatuszOf = Callable[..., dict[str, Any]]
NOW = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)
KEY = SecretFacts("deepgram", "api-key", SecretState.PRESENT, "0123456789ab")
TOKENS = SecretFacts("fleet-tokens", "tokens", SecretState.PRESENT, "feedfeedfeed")
ROLLED_OUT = DeploymentFacts(
    generation=2,
    observed_generation=2,
    desired_replicas=2,
    replicas=2,
    updated_replicas=2,
    ready_replicas=2,
    available_replicas=2,
)
T, F, U = "True", "False", "Unknown"


def pod(**changes: Any) -> dict[str, Any]:
    report = {
        "pod": "p",
        "ready": True,
        "draining": False,
        "upstream": {"open_sockets": 1, "leased_sockets": 0, "breaker": changes.pop("breaker", "closed")},
        "credential": {
            "fingerprint": changes.pop("fingerprint", "0123456789ab"),
            "valid": changes.pop("valid", True),
        },
        "config": {"hash": changes.pop("config_hash", "cfg")},
    }
    return {**report, **changes}


def healthy(**changes: Any) -> FleetFacts:
    base = FleetFacts(
        generation=5,
        config_hash="cfg",
        deepgram_key=KEY,
        client_tokens=TOKENS,
        deployment=ROLLED_OUT,
        statusz=(pod(), pod()),
    )
    return dataclasses.replace(base, **changes)


def summary(facts: FleetFacts) -> dict[str, tuple[str, str]]:
    return {
        condition.type.value: (condition.status.value, condition.reason)
        for condition in conditions.compute_conditions(facts, [], NOW)
    }


def test_a_healthy_backend_is_ready() -> None:
    assert summary(healthy()) == {
        "Ready": (T, "Serving"),
        "Available": (T, "MinimumReplicasAvailable"),
        "Progressing": (F, "RolloutComplete"),
        "Degraded": (F, "AsExpected"),
        "CredentialsValid": (T, "UpstreamAccepted"),
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"spec_problems": ("spec.replicas: bad",)},
            {"Ready": (F, "InvalidSpec"), "Degraded": (T, "InvalidSpec"), "Progressing": (F, "InvalidSpec")},
            id="invalid-spec",
        ),
        pytest.param(
            {"deployment": None, "statusz": ()},
            {
                "Ready": (F, "DeploymentNotFound"),
                "Available": (F, "DeploymentNotFound"),
                "Progressing": (T, "Creating"),
                "CredentialsValid": (U, "NotYetVerified"),
            },
            id="just-created",
        ),
        pytest.param(
            {"deployment": dataclasses.replace(ROLLED_OUT, deadline_exceeded_message="stuck")},
            {
                "Ready": (F, "ProgressDeadlineExceeded"),
                "Progressing": (F, "ProgressDeadlineExceeded"),
                "Degraded": (T, "ProgressDeadlineExceeded"),
                "Available": (T, "MinimumReplicasAvailable"),
            },
            id="stuck-rollout",
        ),
        pytest.param(
            {"deployment": dataclasses.replace(ROLLED_OUT, replica_failure_message="quota")},
            {"Ready": (T, "Serving"), "Degraded": (T, "ReplicaFailure")},
            id="replica-failure",
        ),
        pytest.param(
            {"deployment": dataclasses.replace(ROLLED_OUT, updated_replicas=1, replicas=3)},
            {"Ready": (T, "Serving"), "Progressing": (T, "RollingOut")},
            id="rolling-out",
        ),
        pytest.param(
            {"statusz": (pod(), pod(config_hash="old"))},
            {"Progressing": (T, "ConfigRollingOut")},
            id="config-rolling-out",
        ),
        pytest.param(
            {"statusz": (pod(), pod(fingerprint="oldoldoldold", valid=True))},
            {"Progressing": (T, "CredentialRollingOut"), "CredentialsValid": (T, "UpstreamAccepted")},
            id="key-rolling-out",
        ),
        pytest.param(
            {"deepgram_key": SecretFacts("deepgram", "api-key", SecretState.SECRET_MISSING)},
            {
                "Ready": (F, "DeepgramKeySecretMissing"),
                "CredentialsValid": (F, "DeepgramKeySecretMissing"),
                "Degraded": (T, "DeepgramKeySecretMissing"),
            },
            id="key-secret-missing",
        ),
        pytest.param(
            {"deepgram_key": SecretFacts("deepgram", "api-key", SecretState.KEY_MISSING)},
            {"CredentialsValid": (F, "DeepgramKeyKeyMissing")},
            id="key-missing-in-secret",
        ),
        pytest.param(
            {
                "deepgram_key": SecretFacts(
                    "deepgram", "api-key", SecretState.KEY_MALFORMED, problem="too big"
                )
            },
            {
                "Ready": (F, "DeepgramKeyKeyMalformed"),
                "CredentialsValid": (F, "DeepgramKeyKeyMalformed"),
                "Degraded": (T, "DeepgramKeyKeyMalformed"),
            },
            id="key-malformed",
        ),
        pytest.param(
            {"client_tokens": SecretFacts("fleet-tokens", "tokens", SecretState.SECRET_MISSING)},
            {
                "Ready": (F, "ClientTokensSecretMissing"),
                "CredentialsValid": (F, "ClientTokensSecretMissing"),
            },
            id="tokens-secret-missing",
        ),
        pytest.param(
            {"client_tokens": None},
            {"Ready": (T, "Serving"), "CredentialsValid": (T, "UpstreamAccepted")},
            id="auth-disabled",
        ),
        pytest.param(
            {"statusz": (pod(valid=False), pod())},
            {
                "Ready": (F, "UpstreamAuthFailed"),
                "CredentialsValid": (F, "UpstreamAuthFailed"),
                "Degraded": (T, "UpstreamAuthFailed"),
            },
            id="key-refused",
        ),
        pytest.param(
            {"statusz": (pod(valid=None), pod(fingerprint="oldoldoldold", valid=False))},
            {"Ready": (T, "Serving"), "CredentialsValid": (U, "NotYetVerified")},
            id="old-key-refused-new-untried",
        ),
        pytest.param(
            {"statusz": (pod(breaker="open"), pod(breaker="open"))},
            {"Ready": (T, "Serving"), "Degraded": (T, "UpstreamUnavailable")},
            id="upstream-down",
        ),
        pytest.param(
            {"statusz": (pod(breaker="open"), pod())},
            {"Degraded": (F, "AsExpected")},
            id="one-breaker-open",
        ),
        pytest.param(
            {"deployment": dataclasses.replace(ROLLED_OUT, available_replicas=0, ready_replicas=0)},
            {"Ready": (F, "NoReplicasAvailable"), "Available": (F, "NoReplicasAvailable")},
            id="no-pod-available",
        ),
        pytest.param(
            {"deployment": dataclasses.replace(ROLLED_OUT, available_replicas=1)},
            {"Ready": (T, "Serving"), "Available": (T, "PartiallyAvailable")},
            id="one-of-two-available",
        ),
        pytest.param(
            {
                "deployment": dataclasses.replace(
                    ROLLED_OUT, desired_replicas=0, replicas=0, updated_replicas=0, available_replicas=0
                ),
                "statusz": (),
            },
            {
                "Ready": (F, "ScaledToZero"),
                "Available": (F, "ScaledToZero"),
                "Progressing": (F, "RolloutComplete"),
            },
            id="scaled-to-zero",
        ),
    ],
)
def test_conditions_in_each_situation(changes: dict[str, Any], expected: dict[str, tuple[str, str]]) -> None:
    observed = summary(healthy(**changes))
    assert {kind: observed[kind] for kind in expected} == expected


def test_every_condition_carries_the_generation_in_a_fixed_order() -> None:
    computed = conditions.compute_conditions(healthy(), [], NOW)
    assert [condition.type for condition in computed] == [
        api.ConditionType.READY,
        api.ConditionType.AVAILABLE,
        api.ConditionType.PROGRESSING,
        api.ConditionType.DEGRADED,
        api.ConditionType.CREDENTIALS_VALID,
    ]
    assert {condition.observed_generation for condition in computed} == {5}


def test_new_conditions_start_now_in_whole_seconds() -> None:
    computed = conditions.compute_conditions(healthy(), [], NOW)
    assert {condition.last_transition_time for condition in computed} == {NOW.replace(microsecond=0)}


def test_transition_time_moves_only_when_status_flips() -> None:
    earlier = conditions.compute_conditions(healthy(), [], NOW)
    later = NOW + timedelta(minutes=5)
    # Progressing stays False (reason unchanged), Available stays True with a new reason, Ready flips.
    facts = healthy(deployment=dataclasses.replace(ROLLED_OUT, available_replicas=0))
    by_type = {
        condition.type: condition for condition in conditions.compute_conditions(facts, earlier, later)
    }
    assert by_type[api.ConditionType.PROGRESSING].last_transition_time == NOW.replace(microsecond=0)
    assert by_type[api.ConditionType.READY].status is api.ConditionStatus.FALSE
    assert by_type[api.ConditionType.READY].last_transition_time == later.replace(microsecond=0)
    partially = healthy(deployment=dataclasses.replace(ROLLED_OUT, available_replicas=1))
    kept = {c.type: c for c in conditions.compute_conditions(partially, earlier, later)}[
        api.ConditionType.AVAILABLE
    ]
    assert kept.reason == "PartiallyAvailable"
    assert kept.last_transition_time == NOW.replace(microsecond=0)


def test_recomputing_unchanged_facts_changes_nothing() -> None:
    first = conditions.compute_conditions(healthy(), [], NOW)
    assert conditions.compute_conditions(healthy(), first, NOW + timedelta(hours=1)) == first


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        conditions.compute_conditions(healthy(), [], datetime(2026, 1, 1))


def test_long_problem_lists_are_cut() -> None:
    facts = healthy(spec_problems=tuple(f"spec.field{i}: wrong" for i in range(500)))
    degraded = conditions.compute_conditions(facts, [], NOW)[3]
    assert len(degraded.message) == conditions.MAX_MESSAGE_CHARS


def test_stored_conditions_parse_and_junk_is_skipped() -> None:
    stored = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Serving",
            "message": "",
            "lastTransitionTime": "2026-11-24T12:00:00Z",
            "observedGeneration": 4,
        },
        {"type": "Exploded", "status": "True", "reason": "X", "lastTransitionTime": "2026-11-24T12:00:00Z"},
        {"type": "Available"},
    ]
    (ready,) = conditions.parse_conditions(stored)
    assert ready.last_transition_time == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert conditions.parse_conditions(None) == []
