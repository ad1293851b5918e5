"""The TTSBackend spec: the groups of the API put together, with the rules that span groups."""

from __future__ import annotations

import enum

from pydantic import Field

from ttsfleet.operator.api.base import ApiModel, CelRule, group
from ttsfleet.operator.api.exposure import MonitoringSpec, NetworkPolicySpec, ServiceSpec
from ttsfleet.operator.api.key_management import KeyManagementSpec
from ttsfleet.operator.api.upstream import AuthSpec, DeepgramSpec, RotationSpec
from ttsfleet.operator.api.workload import AutoscalingSpec, ResourcesSpec, RolloutSpec, SchedulingSpec

IMAGE_PATTERN = r"^[^\s]+$"


class CacheSpec(ApiModel):
    """Finished utterances kept in memory per pod, keyed by text and voice settings."""

    enabled: bool = Field(default=True, description="Serve repeated utterances from memory.")
    max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, le=16 * 1024**3, description="Audio bytes the cache may hold per pod."
    )
    ttl_seconds: int = Field(
        default=3600, ge=1, le=7 * 24 * 3600, description="How long an entry may be served."
    )


class LimitsSpec(ApiModel):
    """Per-pod and per-client limits that keep one client from starving the rest."""

    max_sessions: int = Field(default=1000, ge=1, le=100000, description="Client sessions per pod at most.")
    max_speak_chars: int = Field(
        default=2000,
        ge=1,
        le=2000,
        description="Characters per Speak message (Deepgram's own limit is 2000).",
    )
    chars_per_minute_per_token: int = Field(
        default=20000,
        ge=1,
        le=10_000_000,
        description=(
            "Characters a fleet token may send per minute across the fleet; each pod enforces an even "
            "part, re-divided as pods come and go."
        ),
    )
    client_send_buffer_bytes: int = Field(
        default=1024 * 1024,
        ge=4096,
        le=64 * 1024 * 1024,
        description="Audio buffered for a slow client before the session is closed.",
    )


class LogLevel(enum.StrEnum):
    """Gateway log levels."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class PullPolicy(enum.StrEnum):
    """When the kubelet pulls the gateway image."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


def _uses_cpu_autoscaling(spec: TTSBackendSpec) -> bool:
    return spec.autoscaling is not None and spec.autoscaling.cpu_target_percent is not None


def _most_pods(spec: TTSBackendSpec) -> int:
    if spec.autoscaling is not None:
        return spec.autoscaling.max_replicas
    return 1 if spec.replicas is None else spec.replicas


class TTSBackendSpec(ApiModel):
    """Desired state of a fleet of TTS gateways in front of one Deepgram project."""

    cel_rules = (
        CelRule(
            rule="!(has(self.replicas) && has(self.autoscaling))",
            message="set either replicas or autoscaling, not both",
            check=lambda s: s.replicas is None or s.autoscaling is None,
            field_path=".replicas",
        ),
        CelRule(
            rule=(
                "!has(self.autoscaling) || (has(self.autoscaling.targetActiveStreamsPerPod) && "
                "!has(self.autoscaling.targetCPUUtilizationPercentage)) || 'cpu' in self.resources.requests"
            ),
            message="CPU autoscaling needs resources.requests.cpu",
            check=lambda s: not _uses_cpu_autoscaling(s) or "cpu" in s.resources.requests,
            field_path=".resources.requests",
        ),
        CelRule(
            rule=(
                "!has(self.deepgram.socketBudget) || self.deepgram.socketBudget >= (has(self.autoscaling) "
                "? self.autoscaling.maxReplicas : (has(self.replicas) ? self.replicas : 1))"
            ),
            message=(
                "deepgram.socketBudget must be at least the pods there may be (replicas, or "
                "autoscaling.maxReplicas): a pod without an upstream socket never becomes ready"
            ),
            check=lambda s: s.deepgram.socket_budget is None or s.deepgram.socket_budget >= _most_pods(s),
            field_path=".deepgram.socketBudget",
        ),
    )

    image: str = Field(
        max_length=512, pattern=IMAGE_PATTERN, description="Gateway container image (the ttsfleet dataplane)."
    )
    image_pull_policy: PullPolicy = Field(
        default=PullPolicy.IF_NOT_PRESENT, description="When the kubelet pulls the image."
    )
    deepgram: DeepgramSpec = Field(description="The upstream speak API, its key, and default voice settings.")
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Fixed pod count (`kubectl scale` sets it); 1 when neither it nor autoscaling is set.",
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None, description="Let a HorizontalPodAutoscaler own the pod count; excludes replicas."
    )
    # No default: every backend states its client auth (a tokens Secret, or `enabled: false`) on purpose.
    auth: AuthSpec = Field(description="Client authentication with fleet tokens, or `enabled: false`.")
    cache: CacheSpec = group(CacheSpec, "In-memory utterance cache of each pod.")
    limits: LimitsSpec = group(LimitsSpec, "Per-pod and per-client limits.")
    rollout: RolloutSpec = group(RolloutSpec, "Rolling updates and draining.")
    rotation: RotationSpec = group(RotationSpec, "Deepgram key rotation.")
    key_management: KeyManagementSpec | None = Field(
        default=None,
        description="Let the operator rotate the Deepgram key through Deepgram's key API on a schedule.",
    )
    resources: ResourcesSpec = group(ResourcesSpec, "Compute resources of the gateway container.")
    service: ServiceSpec = group(ServiceSpec, "The Service agents connect to.")
    network_policy: NetworkPolicySpec = group(NetworkPolicySpec, "Traffic allowed to and from the pods.")
    monitoring: MonitoringSpec = group(MonitoringSpec, "Prometheus scraping.")
    scheduling: SchedulingSpec = group(SchedulingSpec, "Node selection, tolerations, affinity and spreading.")
    log_level: LogLevel = Field(default=LogLevel.INFO, description="Gateway log level.")

    @property
    def fixed_replicas(self) -> int | None:
        """The pod count the operator writes, or None when an autoscaler owns it."""
        if self.autoscaling is not None:
            return None
        return 1 if self.replicas is None else self.replicas

    @property
    def min_pods(self) -> int:
        """Fewest pods the backend is meant to run (for the disruption budget)."""
        if self.autoscaling is not None:
            return self.autoscaling.min_replicas
        return 1 if self.replicas is None else self.replicas
