"""The status patch: what compute_status writes, and that the CRD's status schema accepts it."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema

from ttsfleet.operator import api, crd, status
from ttsfleet.operator.facts import DeploymentFacts, FleetFacts, SecretFacts, SecretState

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KEY = SecretFacts("deepgram", "api-key", SecretState.PRESENT, "0123456789ab")
POD = {
    "pod": "aura-en-1",
    "ready": True,
    "sessions": {"active": 3},
    "credential": {"fingerprint": "0123456789ab", "valid": True},
    "config": {"hash": "cfg"},
}


def facts(deployment: DeploymentFacts | None) -> FleetFacts:
    return FleetFacts(
        generation=7, config_hash="cfg", deepgram_key=KEY, deployment=deployment, statusz=(POD,)
    )


def compute(deployment: DeploymentFacts | None) -> dict[str, object]:
    return status.compute_status(
        facts(deployment),
        [],
        NOW,
        selector="app.kubernetes.io/name=ttsfleet",
        endpoint="ws://x:8080/v1/speak",
    )


def test_status_patch_has_every_figure_on_the_wire() -> None:
    deployment = DeploymentFacts(
        generation=1,
        observed_generation=1,
        desired_replicas=1,
        replicas=1,
        updated_replicas=1,
        ready_replicas=1,
        available_replicas=1,
    )
    patch = compute(deployment)
    assert patch["observedGeneration"] == 7
    assert (
        patch["replicas"],
        patch["readyReplicas"],
        patch["updatedReplicas"],
        patch["availableReplicas"],
    ) == (
        1,
        1,
        1,
        1,
    )
    assert patch["selector"] == "app.kubernetes.io/name=ttsfleet"
    assert patch["endpoint"] == "ws://x:8080/v1/speak"
    assert patch["configHash"] == "cfg"
    assert patch["credentials"] == {
        "currentFingerprint": "0123456789ab",
        "pods": 1,
        "podsOnCurrent": 1,
        "staleFingerprints": [],
        "complete": True,
    }
    assert patch["fleet"]["activeSessions"] == 3  # type: ignore[index]
    ready = patch["conditions"][0]  # type: ignore[index]
    assert ready == {
        "type": "Ready",
        "status": "True",
        "reason": "Serving",
        "message": "1 of 1 pods available",
        "lastTransitionTime": "2026-11-24T12:00:00Z",
        "observedGeneration": 7,
    }


def test_status_patch_is_valid_under_the_crd_schema() -> None:
    schema = crd.status_schema()
    jsonschema.validate(compute(None), schema)
    jsonschema.validate(compute(DeploymentFacts()), schema)


def test_without_a_deployment_there_are_no_pods() -> None:
    patch = compute(None)
    assert patch["replicas"] == patch["readyReplicas"] == 0


def test_convergence_needs_ready_and_the_latest_generation() -> None:
    done = api.TTSBackendStatus.model_validate(
        compute(DeploymentFacts(desired_replicas=1, available_replicas=1))
    )
    assert status.is_converged(done, generation=7)
    assert not status.is_converged(done, generation=8)
    not_ready = api.TTSBackendStatus.model_validate(compute(None))
    assert not status.is_converged(not_ready, generation=7)
    assert not status.is_converged(api.TTSBackendStatus(), generation=1)
    assert status.condition_of(api.TTSBackendStatus(), api.ConditionType.READY) is None


def test_the_status_patch_nulls_what_vanished_and_is_empty_when_nothing_changed() -> None:
    stored = {
        "observedGeneration": 3,
        "credentials": {"currentFingerprint": "0123456789ab", "pods": 2, "staleFingerprints": ["aa"]},
        "endpoint": "ws://x",
    }
    wanted = {"observedGeneration": 3, "credentials": {"pods": 2, "staleFingerprints": []}}
    assert status.merge_patch(stored, wanted) == {
        "credentials": {"currentFingerprint": None, "staleFingerprints": []},
        "endpoint": None,
    }
    assert status.merge_patch(wanted, wanted) is None
