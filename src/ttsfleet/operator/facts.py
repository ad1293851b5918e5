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
from typing import Any, NamedTuple

from ttsfleet import fingerprints
from ttsfleet.protocol import credential_problem


class SecretState(enum.StrEnum):
    """Whether a referenced Secret key can be used; the value names the condition reason's tail
    (`DeepgramKeySecretMissing`, `ClientTokensKeyMissing`, `DeepgramKeyKeyMalformed`)."""

    PRESENT = "Present"
    SECRET_MISSING = "SecretMissing"  # not found among the Secrets labelled for watching
    KEY_MISSING = "KeyMissing"
    KEY_MALFORMED = "KeyMalformed"  # a value that cannot be a key (a megabyte, spaces inside)


class KeyDigest(NamedTuple):
    """What the operator keeps of one Secret value: its fingerprint (None when empty or unreadable),
    and why it could not be a single key or token (None when it could)."""

    fingerprint: str | None
    credential_problem: str | None = None

    @classmethod
    def of(cls, value: str | None) -> KeyDigest:
        if not value or not value.strip():
            return cls(None)
        stripped = value.strip()
        return cls(fingerprints.fingerprint_secret(stripped), credential_problem(stripped))


@dataclass(frozen=True, slots=True)
class SecretFacts:
    """A referenced Secret key: found or not, and the fingerprint of its value.

    `single` Secret keys hold one credential (the Deepgram key), so a value no header can carry is
    KEY_MALFORMED; a client-tokens file holds many, one per line.
    """

    name: str
    key: str
    state: SecretState
    fingerprint: str | None = None
    problem: str | None = None  # for KEY_MALFORMED: why

    @classmethod
    def from_secret(
        cls, name: str, key: str, body: Mapping[str, Any] | None, *, single: bool = False
    ) -> SecretFacts:
        """Read `key` of a Secret object (None when the Secret does not exist)."""
        if body is None:
            return cls(name, key, SecretState.SECRET_MISSING)
        return cls._of_digest(name, key, KeyDigest.of(_secret_value(body, key)), single)

    @classmethod
    def from_fingerprints(
        cls, name: str, key: str, keys: Mapping[str, KeyDigest] | None, *, single: bool = False
    ) -> SecretFacts:
        """Read `key` from `secret_fingerprints` of a Secret (None when the Secret does not exist)."""
        if keys is None:
            return cls(name, key, SecretState.SECRET_MISSING)
        return cls._of_digest(name, key, keys.get(key) or KeyDigest(None), single)

    @classmethod
    def _of_digest(cls, name: str, key: str, digest: KeyDigest, single: bool) -> SecretFacts:
        if digest.fingerprint is None:
            return cls(name, key, SecretState.KEY_MISSING)
        if single and digest.credential_problem is not None:
            return cls(name, key, SecretState.KEY_MALFORMED, problem=digest.credential_problem)
        return cls(name, key, SecretState.PRESENT, digest.fingerprint)


def secret_fingerprints(body: Mapping[str, Any]) -> dict[str, KeyDigest]:
    """Every key of a Secret with its value's digest: a fingerprint and a shape verdict.

    What the operator keeps of a watched Secret: fingerprints, never values.
    """
    keys = sorted({*(body.get("data") or {}), *(body.get("stringData") or {})})
    return {key: KeyDigest.of(_secret_value(body, key)) for key in keys}


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
class HpaCondition:
    """One condition of a HorizontalPodAutoscaler, as the HPA controller wrote it."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


@dataclass(frozen=True, slots=True)
class HpaFacts:
    """What a HorizontalPodAutoscaler's spec and status say: replicas, conditions and metrics.

    Metrics are named as the HPA names them: a Pods or Object metric by its metric name, a Resource
    metric by its resource (`cpu`).
    """

    desired_replicas: int | None = None
    current_replicas: int | None = None
    last_scale_time: str | None = None
    conditions: tuple[HpaCondition, ...] = ()
    wanted_metrics: tuple[str, ...] = ()
    reported_metrics: tuple[str, ...] = ()

    @classmethod
    def from_hpa(cls, body: Mapping[str, Any]) -> HpaFacts:
        """Read an autoscaling/v2 HorizontalPodAutoscaler object."""
        spec, status = body.get("spec") or {}, body.get("status") or {}
        desired, current = status.get("desiredReplicas"), status.get("currentReplicas")
        return cls(
            desired_replicas=None if desired is None else int(desired),
            current_replicas=None if current is None else int(current),
            last_scale_time=status.get("lastScaleTime"),
            conditions=tuple(
                HpaCondition(
                    type=str(entry.get("type")),
                    status=str(entry.get("status") or "Unknown"),
                    reason=str(entry.get("reason") or ""),
                    message=str(entry.get("message") or ""),
                    last_transition_time=entry.get("lastTransitionTime"),
                )
                for entry in status.get("conditions") or ()
                if entry.get("type")
            ),
            wanted_metrics=_metric_names(spec.get("metrics")),
            reported_metrics=_metric_names(status.get("currentMetrics")),
        )

    def condition(self, kind: str) -> HpaCondition | None:
        """The condition of type `kind`, if the HPA controller wrote one."""
        return next((condition for condition in self.conditions if condition.type == kind), None)


def _metric_names(entries: Sequence[Mapping[str, Any]] | None) -> tuple[str, ...]:
    # A metric the controller could not read is reported as an entry without a type: it has no name.
    names = []
    for entry in entries or ():
        source = entry.get(_METRIC_SOURCES.get(str(entry.get("type")), "")) or {}
        name = (source.get("metric") or {}).get("name") or source.get("name")
        if name:
            names.append(str(name))
    return tuple(names)


# autoscaling/v2 metric type → the field holding its source.
_METRIC_SOURCES = {
    "Pods": "pods",
    "Object": "object",
    "External": "external",
    "Resource": "resource",
    "ContainerResource": "containerResource",
}


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
    # Whether the spec asks for an HPA, and what it reports (None while it does not exist yet).
    autoscaled: bool = False
    hpa: HpaFacts | None = None
