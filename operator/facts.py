"""Observed facts about a backend, gathered by handlers and handed to the pure status functions.

Each `from_*` constructor reads a raw Kubernetes object (as the API returns it) without I/O, so the
handlers stay thin and the parsing is tested here. Secret values never leave `SecretFacts.from_secret`:
only their fingerprint does.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ttsfleet import fingerprints


class SecretState(enum.StrEnum):
    """Whether a referenced Secret key can be used."""

    PRESENT = "Present"
    SECRET_MISSING = "SecretMissing"
    KEY_MISSING = "KeyMissing"


@dataclass(frozen=True, slots=True)
class SecretFacts:
    """A referenced Secret key: found or not, and the fingerprint of its value."""

    name: str
    key: str
    state: SecretState
    fingerprint: str | None = None

    @classmethod
    def from_secret(cls, name: str, key: str, body: Mapping[str, Any] | None) -> SecretFacts:
        """Read `key` of a Secret object (None when the Secret does not exist)."""
        if body is None:
            return cls(name, key, SecretState.SECRET_MISSING)
        value = _secret_value(body, key)
        if not value or not value.strip():
            return cls(name, key, SecretState.KEY_MISSING)
        return cls(name, key, SecretState.PRESENT, fingerprints.fingerprint_secret(value))

    @classmethod
    def from_fingerprints(cls, name: str, key: str, keys: Mapping[str, str | None] | None) -> SecretFacts:
        """Read `key` from `secret_fingerprints` of a Secret (None when the Secret does not exist)."""
        if keys is None:
            return cls(name, key, SecretState.SECRET_MISSING)
        fingerprint = keys.get(key)
        if fingerprint is None:
            return cls(name, key, SecretState.KEY_MISSING)
        return cls(name, key, SecretState.PRESENT, fingerprint)


def secret_fingerprints(body: Mapping[str, Any]) -> dict[str, str | None]:
    """Every key of a Secret with its value's fingerprint (None when empty or unreadable).

    What the operator keeps of a watched Secret: fingerprints, never values.
    """
    keys = sorted({*(body.get("data") or {}), *(body.get("stringData") or {})})
    found = {}
    for key in keys:
        value = _secret_value(body, key)
        found[key] = fingerprints.fingerprint_secret(value) if value and value.strip() else None
    return found


def _secret_value(body: Mapping[str, Any], key: str) -> str | None:
    # stringData is write-only in the API but appears in objects built by hand (tests, emulators).
    string_data = body.get("stringData") or {}
    if key in string_data:
        return str(string_data[key])
    encoded = (body.get("data") or {}).get(key)
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


@dataclass(frozen=True, slots=True)
class DeploymentFacts:
    """What a Deployment's metadata, spec and status say about its rollout."""

    generation: int = 0
    observed_generation: int = 0
    desired_replicas: int = 1
    replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    deadline_exceeded_message: str | None = None
    replica_failure_message: str | None = None

    @classmethod
    def from_deployment(cls, body: Mapping[str, Any]) -> DeploymentFacts:
        """Read a Deployment object."""
        status = body.get("status") or {}
        spec = body.get("spec") or {}
        conditions = {entry.get("type"): entry for entry in status.get("conditions") or ()}
        progressing = conditions.get("Progressing") or {}
        failure = conditions.get("ReplicaFailure") or {}
        return cls(
            generation=int((body.get("metadata") or {}).get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            desired_replicas=int(spec.get("replicas", 1)),
            replicas=int(status.get("replicas") or 0),
            updated_replicas=int(status.get("updatedReplicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
            available_replicas=int(status.get("availableReplicas") or 0),
            deadline_exceeded_message=(
                str(progressing.get("message") or "rollout made no progress")
                if progressing.get("reason") == "ProgressDeadlineExceeded"
                else None
            ),
            replica_failure_message=(
                str(failure.get("message") or "pods could not be created")
                if failure.get("status") == "True"
                else None
            ),
        )

    @property
    def is_rolled_out(self) -> bool:
        """The Deployment saw its latest spec and every pod runs the latest template."""
        return (
            self.observed_generation >= self.generation
            and self.updated_replicas >= self.desired_replicas
            and self.replicas == self.updated_replicas
        )


@dataclass(frozen=True, slots=True)
class FleetFacts:
    """Everything observed about one backend at one moment; input of compute_conditions/compute_status."""

    generation: int
    config_hash: str
    deepgram_key: SecretFacts
    client_tokens: SecretFacts | None = None
    deployment: DeploymentFacts | None = None
    spec_problems: tuple[str, ...] = ()
    # Optional children (ServiceMonitor) that could not be written, each with why.
    skipped_children: tuple[str, ...] = ()
    statusz: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
