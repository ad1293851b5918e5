"""Reading Secrets and Deployments into facts, without I/O."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ttsfleet import fingerprints
from ttsfleet.operator.facts import DeploymentFacts, SecretFacts, SecretState


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("body", "state"),
    [
        pytest.param(None, SecretState.SECRET_MISSING, id="no-secret"),
        pytest.param({"data": {"other": encoded("x")}}, SecretState.KEY_MISSING, id="no-key"),
        pytest.param({"data": None}, SecretState.KEY_MISSING, id="no-data"),
        pytest.param({"data": {"api-key": encoded("  \n")}}, SecretState.KEY_MISSING, id="blank"),
        pytest.param({"data": {"api-key": "%%%"}}, SecretState.KEY_MISSING, id="not-base64"),
        pytest.param(
            {"data": {"api-key": base64.b64encode(b"\xff\xfe").decode()}},
            SecretState.KEY_MISSING,
            id="not-utf8",
        ),
        pytest.param({"data": {"api-key": encoded("dg-key\n")}}, SecretState.PRESENT, id="data"),
        pytest.param({"stringData": {"api-key": "dg-key"}}, SecretState.PRESENT, id="string-data"),
        pytest.param(
            {"data": {"api-key": encoded("k" * 1_000_000)}}, SecretState.KEY_MALFORMED, id="a-megabyte"
        ),
        pytest.param({"stringData": {"api-key": "two words"}}, SecretState.KEY_MALFORMED, id="space-inside"),
    ],
)
def test_secret_state(body: dict[str, Any] | None, state: SecretState) -> None:
    facts = SecretFacts.from_secret("deepgram", "api-key", body, single=True)
    assert facts.state is state
    assert (facts.fingerprint is not None) is (state is SecretState.PRESENT)


def test_only_the_fingerprint_of_the_key_is_kept() -> None:
    facts = SecretFacts.from_secret("deepgram", "api-key", {"data": {"api-key": encoded("dg-key\n")}})
    assert facts.fingerprint == fingerprints.fingerprint_secret("dg-key")
    assert "dg-key" not in repr(facts)


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": 4},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 4, **status},
    }


def test_deployment_figures_are_read() -> None:
    facts = DeploymentFacts.from_deployment(
        deployment(replicas=3, updatedReplicas=3, readyReplicas=2, availableReplicas=2)
    )
    assert facts == DeploymentFacts(
        generation=4,
        observed_generation=4,
        desired_replicas=3,
        replicas=3,
        updated_replicas=3,
        ready_replicas=2,
        available_replicas=2,
    )
    assert facts.is_rolled_out


def test_a_fresh_deployment_has_zero_everything() -> None:
    facts = DeploymentFacts.from_deployment({"metadata": {"name": "x"}})
    assert facts.replicas == 0
    assert facts.desired_replicas == 1
    assert not facts.is_rolled_out


def test_progress_deadline_and_replica_failure_are_noticed() -> None:
    facts = DeploymentFacts.from_deployment(
        deployment(
            conditions=[
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "stuck",
                },
                {"type": "ReplicaFailure", "status": "True", "message": "quota exceeded"},
            ]
        )
    )
    assert facts.deadline_exceeded_message == "stuck"
    assert facts.replica_failure_message == "quota exceeded"


def test_healthy_conditions_are_not_failures() -> None:
    facts = DeploymentFacts.from_deployment(
        deployment(
            conditions=[
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                {"type": "ReplicaFailure", "status": "False"},
            ]
        )
    )
    assert facts.deadline_exceeded_message is None
    assert facts.replica_failure_message is None


@pytest.mark.parametrize(
    ("changes", "rolled_out"),
    [
        pytest.param({}, True, id="done"),
        pytest.param({"observed_generation": 3}, False, id="spec-not-seen"),
        pytest.param({"updated_replicas": 2}, False, id="pods-not-updated"),
        pytest.param({"replicas": 4}, False, id="old-pods-left"),
    ],
)
def test_rolled_out_means_seen_updated_and_no_old_pods(changes: dict[str, int], rolled_out: bool) -> None:
    base = {
        "generation": 4,
        "observed_generation": 4,
        "desired_replicas": 3,
        "replicas": 3,
        "updated_replicas": 3,
    }
    assert DeploymentFacts(**{**base, **changes}).is_rolled_out is rolled_out
