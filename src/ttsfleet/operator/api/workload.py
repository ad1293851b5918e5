"""The workload half of a TTSBackend: how many pods, how they roll, what they get, where they run."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema, model_validator

from ttsfleet.operator.api import podchecks
from ttsfleet.operator.api.base import RULE_SEPARATOR, ApiModel, CelRule, free_form, group

# Kubernetes resource.Quantity as the apiserver's own OpenAPI spells it, without the minus sign: a
# container's requests and limits must not be negative, and the apiserver refuses the Deployment if so.
_DECIMAL = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY_PATTERN = rf"^\+?{_DECIMAL}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_DECIMAL}))?$"
# maxSurge: a positive count or a positive percentage; 0 would stall a rollout with maxUnavailable 0.
SURGE_PERCENT_PATTERN = r"^[1-9][0-9]*%$"


def _int_or_string(pattern: str, minimum: int) -> dict[str, Any]:
    # The shape the apiserver's own OpenAPI gives IntOrString fields, constraints hoisted to the node.
    return {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
        "pattern": pattern,
        "minimum": minimum,
    }


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a quantity must not be negative")
    elif not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 250m, 1Gi)")
    return value


def _check_surge(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 1:
            raise ValueError("maxSurge must be at least 1 (maxUnavailable is 0)")
    elif not re.fullmatch(SURGE_PERCENT_PATTERN, value):
        raise ValueError(f"maxSurge {value!r} must be a count or a percentage such as 25%")
    return value


Quantity = Annotated[
    int | str, AfterValidator(_check_quantity), WithJsonSchema(_int_or_string(QUANTITY_PATTERN, minimum=0))
]
Surge = Annotated[
    int | str, AfterValidator(_check_surge), WithJsonSchema(_int_or_string(SURGE_PERCENT_PATTERN, minimum=1))
]


class ScalingPolicyType(enum.StrEnum):
    """Unit of an HPA scaling policy."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(enum.StrEnum):
    """Which HPA policy wins when several allow a change."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicy(ApiModel):
    """At most `value` pods (or percent) change within `periodSeconds`."""

    type: ScalingPolicyType = Field(description="Pods or Percent.")
    value: int = Field(ge=1, le=1000, description="Pods, or percent of current pods, per period.")
    period_seconds: int = Field(
        ge=1, le=1800, description="Length of the window the value applies to, in seconds."
    )


class ScalingRules(ApiModel):
    """One direction of HPA behaviour; replaces the operator's default for that direction."""

    stabilization_window_seconds: int | None = Field(
        default=None, ge=0, le=3600, description="Look-back window for recommendations, in seconds."
    )
    policies: list[ScalingPolicy] = Field(
        default_factory=list,
        max_length=10,
        description="Rate limits on scaling; empty keeps the operator's default policies.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    select_policy: SelectPolicy | None = Field(
        default=None, description="Which policy wins: Max, Min or Disabled."
    )


class ScalingBehavior(ApiModel):
    """Overrides of the HPA's scaling behaviour, per direction."""

    scale_up: ScalingRules | None = Field(
        default=None, description="Scale-up rules; default: no stabilization, +100% or +4 pods per 15 s."
    )
    scale_down: ScalingRules | None = Field(
        default=None,
        description="Scale-down rules; default: 300 s stabilization, at most 1 pod per 60 s (streams drain).",
    )


class AutoscalingSpec(ApiModel):
    """A HorizontalPodAutoscaler owns the replica count; CPU by default, active streams when asked."""

    cel_rules = (
        CelRule(
            rule="self.minReplicas <= self.maxReplicas",
            message="minReplicas must not exceed maxReplicas",
            check=lambda s: s.min_replicas <= s.max_replicas,
            field_path=".minReplicas",
        ),
    )

    min_replicas: int = Field(default=2, ge=1, le=1000, description="Fewest pods the autoscaler keeps.")
    max_replicas: int = Field(default=10, ge=1, le=1000, description="Most pods the autoscaler may run.")
    target_active_streams_per_pod: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description=(
            "Average active client sessions per pod to aim for (Pods metric ttsfleet_sessions_active, "
            "needs a metrics adapter); unset scales on CPU only."
        ),
    )
    target_cpu_utilization_percentage: int | None = Field(
        default=None,
        alias="targetCPUUtilizationPercentage",
        ge=1,
        le=100,
        description=(
            "Average CPU utilisation (percent of requests) to aim for; 70 when neither target is set. "
            "Needs resources.requests.cpu."
        ),
    )
    behavior: ScalingBehavior = group(ScalingBehavior, "Scaling behaviour overrides, per direction.")

    @property
    def cpu_target_percent(self) -> int | None:
        """The CPU utilisation target in effect: the given one, or 70 when no target is set at all."""
        if self.target_cpu_utilization_percentage is not None:
            return self.target_cpu_utilization_percentage
        return None if self.target_active_streams_per_pod is not None else 70


class RolloutSpec(ApiModel):
    """How pods are replaced: surge first (never fewer ready pods), drain streams before exit."""

    max_surge: Surge = Field(
        default="25%",
        description="Extra pods during a rollout (count or percent); maxUnavailable is always 0.",
    )
    drain_timeout_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="Seconds a stopping pod may spend finishing in-flight utterances before closing sockets.",
    )
    # Removing a terminating pod's endpoint is not instant: the EndpointSlice update must reach every
    # node's kube-proxy (usually 1-2 s, more on large or busy clusters) and any cloud load balancer
    # must deregister the target (AWS, GCP and Azure take 10 s or more). Until then new connections
    # still arrive, and a pod that stopped accepting would refuse them.
    pre_stop_delay_seconds: int = Field(
        default=15,
        ge=0,
        le=120,
        description=(
            "Seconds a stopping pod keeps accepting connections while its endpoint is removed everywhere. "
            "The default covers EndpointSlice and kube-proxy propagation (seconds) and cloud load "
            "balancers' target deregistration (often 10 s or more); lower it only where nothing but "
            "kube-proxy routes to the pods."
        ),
    )
    min_ready_seconds: int = Field(
        default=5,
        ge=0,
        le=600,
        description="Seconds a new pod must stay ready before it counts as available.",
    )
    progress_deadline_seconds: int = Field(
        default=600,
        ge=30,
        le=7200,
        description="Seconds without rollout progress before Degraded (ProgressDeadlineExceeded).",
    )


def _default_resources() -> dict[str, dict[str, int | str]]:
    return {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}


class ResourcesSpec(ApiModel):
    """Compute resources of the gateway container."""

    requests: dict[str, Quantity] = Field(
        default_factory=lambda: dict(_default_resources()["requests"]),
        max_length=16,
        description="Resources the scheduler reserves (cpu, memory…); CPU autoscaling measures against cpu.",
    )
    limits: dict[str, Quantity] = Field(
        default_factory=lambda: dict(_default_resources()["limits"]),
        max_length=16,
        description="Hard caps; a memory limit is advised, a CPU limit is not (throttling hurts latency).",
    )

    @model_validator(mode="after")
    def _check_requests_within_limits(self) -> ResourcesSpec:
        _raise_problems(podchecks.resource_problems(self.requests, self.limits))
        return self


def _raise_problems(problems: list[str]) -> None:
    # Checks the schema cannot express (no CEL here: the apiserver refuses the Deployment instead).
    if problems:
        raise ValueError(RULE_SEPARATOR.join(problems))


class WhenUnsatisfiable(enum.StrEnum):
    """What the scheduler does when spreading is impossible."""

    SCHEDULE_ANYWAY = "ScheduleAnyway"
    DO_NOT_SCHEDULE = "DoNotSchedule"


class TopologySpreadSpec(ApiModel):
    """Spread pods over zones and nodes so one failure takes out few streams."""

    enabled: bool = Field(default=True, description="Add zone and hostname spread constraints.")
    max_skew: int = Field(
        default=1, ge=1, le=100, description="Largest allowed difference in pods between domains."
    )
    when_unsatisfiable: WhenUnsatisfiable = Field(
        default=WhenUnsatisfiable.SCHEDULE_ANYWAY,
        description="ScheduleAnyway (soft) or DoNotSchedule (hard).",
    )


class SchedulingSpec(ApiModel):
    """Where gateway pods may run."""

    node_selector: dict[str, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict, max_length=32, description="Node labels a node must carry."
    )
    tolerations: list[dict[str, Any]] = free_form("Pod tolerations, as in a Pod spec.", default_factory=list)
    affinity: dict[str, Any] = free_form("Pod affinity, as in a Pod spec (nodeAffinity, podAntiAffinity…).")
    topology_spread: TopologySpreadSpec = group(TopologySpreadSpec, "Zone and hostname spreading.")
    priority_class_name: str | None = Field(
        default=None,
        max_length=253,
        description="PriorityClass of the pods; voice traffic is often critical.",
    )

    @model_validator(mode="after")
    def _check_pod_fields(self) -> SchedulingSpec:
        _raise_problems(
            podchecks.node_selector_problems(self.node_selector)
            + podchecks.toleration_problems(self.tolerations)
            + podchecks.affinity_problems(self.affinity)
        )
        return self
