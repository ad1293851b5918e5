"""The TTSBackend status: conditions shaped as Kubernetes conventions ask, replicas, fleet figures."""

from __future__ import annotations

import enum

from pydantic import ConfigDict, Field

from ttsfleet.operator.api.base import ApiModel
from ttsfleet.operator.api.key_management import KeyRotationStatus
from ttsfleet.operator.api.times import Timestamp as Timestamp
from ttsfleet.operator.api.times import format_time as format_time
from ttsfleet.operator.api.usage import UsageStatus


class ConditionType(enum.StrEnum):
    """Condition types of a TTSBackend; Ready is the one to wait on."""

    READY = "Ready"
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    CREDENTIALS_VALID = "CredentialsValid"
    # Only on an autoscaled backend: whether its HPA can read the metrics it scales on.
    SCALING_ACTIVE = "ScalingActive"


class ConditionStatus(enum.StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One observation about the backend, as metav1.Condition."""

    type: ConditionType = Field(
        description="Ready, Available, Progressing, Degraded, CredentialsValid or ScalingActive."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason for the last change, for machines and alerts.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: Timestamp = Field(description="When status last changed (not reason or message).")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed for."
    )


class CredentialRollout(ApiModel):
    """Which Deepgram key the pods use, compared with the key in the Secret."""

    current_fingerprint: str | None = Field(
        default=None, description="Fingerprint of the key in the Secret (a hash prefix, never the key)."
    )
    pods: int = Field(default=0, ge=0, description="Pods that reported a fingerprint or none.")
    pods_on_current: int = Field(default=0, ge=0, description="Pods using the Secret's current key.")
    stale_fingerprints: list[str] = Field(
        default_factory=list,
        description="Fingerprints of other keys still in use; the old key may be revoked once this is empty.",
    )
    complete: bool = Field(default=False, description="Every probed pod uses the current key.")


class FleetFigures(ApiModel):
    """Totals over the pods' /statusz reports at the last probe."""

    pods_probed: int = Field(default=0, ge=0, description="Pods that answered /statusz.")
    pods_unreadable: int = Field(default=0, ge=0, description="Pods whose /statusz could not be understood.")
    pods_ready: int = Field(default=0, ge=0, description="Pods reporting ready.")
    pods_draining: int = Field(default=0, ge=0, description="Pods draining before exit.")
    pods_on_current_config: int = Field(default=0, ge=0, description="Pods running the current config hash.")
    active_sessions: int = Field(default=0, ge=0, description="Open client sessions.")
    active_utterances: int = Field(default=0, ge=0, description="Utterances being synthesised.")
    upstream_sockets: int = Field(default=0, ge=0, description="Open upstream WebSockets.")
    leased_sockets: int = Field(default=0, ge=0, description="Upstream WebSockets serving an utterance.")
    breakers_open: int = Field(default=0, ge=0, description="Pods whose upstream circuit breaker is open.")
    breakers_half_open: int = Field(default=0, ge=0, description="Pods whose upstream breaker is probing.")


class AutoscalerCondition(ApiModel):
    """One condition of the backend's HorizontalPodAutoscaler, as the HPA controller wrote it."""

    type: str = Field(description="AbleToScale, ScalingActive or ScalingLimited.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="The HPA controller's reason.")
    message: str = Field(default="", max_length=32768, description="The HPA controller's message.")
    last_transition_time: Timestamp | None = Field(
        default=None, description="When the HPA controller last flipped it."
    )


class AutoscalingStatus(ApiModel):
    """What the backend's HorizontalPodAutoscaler reports (spec.autoscaling only)."""

    desired_replicas: int | None = Field(
        default=None, ge=0, description="Pods the autoscaler last asked for."
    )
    current_replicas: int | None = Field(default=None, ge=0, description="Pods the autoscaler last saw.")
    last_scale_time: Timestamp | None = Field(default=None, description="When the autoscaler last scaled.")
    conditions: list[AutoscalerCondition] = Field(
        default_factory=list,
        description="The autoscaler's AbleToScale, ScalingActive and ScalingLimited conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class TTSBackendStatus(ApiModel):
    """Observed state of the backend, written by the operator only."""

    # Written by the operator only (kopf keeps its progress in annotations), so the apiserver prunes
    # anything else.
    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Available, Progressing, Degraded, CredentialsValid; ScalingActive if autoscaled.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    replicas: int | None = Field(default=None, ge=0, description="Pods of the backend (the /scale status).")
    ready_replicas: int | None = Field(default=None, ge=0, description="Pods ready for sessions.")
    updated_replicas: int | None = Field(default=None, ge=0, description="Pods on the current pod template.")
    available_replicas: int | None = Field(default=None, ge=0, description="Pods ready for minReadySeconds.")
    selector: str | None = Field(
        default=None, description="Label selector of the pods (the /scale selector)."
    )
    endpoint: str | None = Field(default=None, description="WebSocket URL agents speak to.")
    config_hash: str | None = Field(default=None, description="Hash of the rendered gateway config.")
    credentials: CredentialRollout | None = Field(
        default=None, description="Deepgram key rollout over the pods."
    )
    fleet: FleetFigures | None = Field(default=None, description="Figures from the pods' /statusz.")
    autoscaling: AutoscalingStatus | None = Field(
        default=None, description="The HorizontalPodAutoscaler's replicas and conditions (spec.autoscaling)."
    )
    key_rotation: KeyRotationStatus | None = Field(
        default=None, description="Scheduled key rotation through Deepgram's key API (spec.keyManagement)."
    )
    usage: UsageStatus | None = Field(
        default=None, description="Billed characters and estimated cost over the last hour and day."
    )


# Written by the key rotator, apart from the reconcile's status write (which must leave it alone).
KEY_ROTATION_FIELD = "keyRotation"
