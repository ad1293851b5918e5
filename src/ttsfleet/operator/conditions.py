"""The five TTSBackend conditions, computed from observed facts (pure: time is an argument).

`lastTransitionTime` moves only when a condition's status flips; reason and message may change
without it. Ready is the one to wait on: the spec is valid, pods serve, no rollout is stuck, and the
key is not known to be refused (an unverified key does not block Ready: a pod's /readyz already
requires the key file, and Deepgram judges a key only when it is used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic

from ttsfleet.operator import api, fleet
from ttsfleet.operator.facts import FleetFacts, HpaFacts, SecretFacts, SecretState
from ttsfleet.operator.rendering.meta import WATCHED_SECRETS
from ttsfleet.operator.rendering.scaling import SESSIONS_METRIC

_TRUE, _FALSE, _UNKNOWN = api.ConditionStatus.TRUE, api.ConditionStatus.FALSE, api.ConditionStatus.UNKNOWN
# Messages are for people; a long list of spec problems is cut so status stays small.
MAX_MESSAGE_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Observation:
    """A condition before it is stamped with times and generation."""

    type: api.ConditionType
    status: api.ConditionStatus
    reason: str
    message: str


def compute_conditions(
    facts: FleetFacts, previous: Sequence[api.Condition], now: datetime
) -> list[api.Condition]:
    """Ready, Available, Progressing, Degraded, CredentialsValid (and ScalingActive when autoscaled) for
    `facts`, carrying transition times."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    credentials = observe_credentials(facts)
    available = observe_available(facts)
    progressing = observe_progressing(facts)
    degraded = observe_degraded(facts, credentials)
    ready = observe_ready(facts, available, credentials)
    observations = [ready, available, progressing, degraded, credentials]
    if facts.autoscaled and not facts.spec_problems:
        observations.append(observe_scaling_active(facts.hpa))
    earlier = {condition.type: condition for condition in previous}
    return [
        _stamp(observation, earlier.get(observation.type), now, facts.generation)
        for observation in observations
    ]


def parse_conditions(raw: Sequence[Mapping[str, Any]] | None) -> list[api.Condition]:
    """Conditions from a stored status, skipping entries that are not ours or not well-formed."""
    parsed = []
    for entry in raw or ():
        try:
            parsed.append(api.Condition.model_validate(entry))
        except pydantic.ValidationError:
            continue
    return parsed


def _stamp(
    observation: Observation, earlier: api.Condition | None, now: datetime, generation: int
) -> api.Condition:
    since = now.replace(microsecond=0)
    if earlier is not None and earlier.status == observation.status:
        since = earlier.last_transition_time
    return api.Condition(
        type=observation.type,
        status=observation.status,
        reason=observation.reason,
        message=observation.message[:MAX_MESSAGE_CHARS],
        last_transition_time=since,
        observed_generation=generation,
    )


def _secret_problem(secret: SecretFacts, what: str) -> tuple[str, str] | None:
    """The reason (`{what}{state}`, e.g. DeepgramKeySecretMissing) and message for an unusable Secret."""
    if secret.state is SecretState.PRESENT:
        return None
    reason = f"{what}{secret.state.value}"
    if secret.state is SecretState.SECRET_MISSING:
        return reason, (
            f"Secret {secret.name} not found among the Secrets labelled {WATCHED_SECRETS}: create it, or add"
            f" the label (kubectl label secret {secret.name} {WATCHED_SECRETS})"
        )
    if secret.state is SecretState.KEY_MALFORMED:
        return reason, f"key {secret.key!r} of Secret {secret.name} is not a Deepgram key: {secret.problem}"
    return reason, f"Secret {secret.name} has no non-empty key {secret.key!r}"


def observe_credentials(facts: FleetFacts) -> Observation:
    """CredentialsValid: the Secrets exist and Deepgram has not refused the current key."""
    kind = api.ConditionType.CREDENTIALS_VALID
    problem = _secret_problem(facts.deepgram_key, "DeepgramKey")
    if problem is None and facts.client_tokens is not None:
        problem = _secret_problem(facts.client_tokens, "ClientTokens")
    if problem is not None:
        return Observation(kind, _FALSE, *problem)
    current = facts.deepgram_key.fingerprint
    verdicts = [
        report.credential.valid
        for report in fleet.readable_reports(facts.statusz)
        if report.credential.fingerprint == current
    ]
    if False in verdicts:
        refused = verdicts.count(False)
        return Observation(
            kind, _FALSE, "UpstreamAuthFailed", f"Deepgram refused key {current} on {refused} pod(s)"
        )
    if True in verdicts:
        return Observation(kind, _TRUE, "UpstreamAccepted", f"Deepgram accepted key {current}")
    return Observation(kind, _UNKNOWN, "NotYetVerified", f"no pod has used key {current} with Deepgram yet")


def observe_available(facts: FleetFacts) -> Observation:
    """Available: at least one pod has been ready for minReadySeconds."""
    kind = api.ConditionType.AVAILABLE
    deployment = facts.deployment
    if deployment is None:
        return Observation(kind, _FALSE, "DeploymentNotFound", "the Deployment does not exist yet")
    if deployment.desired_replicas == 0:
        return Observation(kind, _FALSE, "ScaledToZero", "replicas is 0")
    figures = f"{deployment.available_replicas} of {deployment.desired_replicas} pods available"
    if deployment.available_replicas == 0:
        return Observation(kind, _FALSE, "NoReplicasAvailable", figures)
    if deployment.available_replicas < deployment.desired_replicas:
        return Observation(kind, _TRUE, "PartiallyAvailable", figures)
    return Observation(kind, _TRUE, "MinimumReplicasAvailable", figures)


def observe_progressing(facts: FleetFacts) -> Observation:
    """Progressing: True while pods, config or key are moving; False when done or stuck."""
    kind = api.ConditionType.PROGRESSING
    deployment = facts.deployment
    if facts.spec_problems:
        return Observation(kind, _FALSE, "InvalidSpec", "the spec is invalid; nothing is rolled out")
    if deployment is None:
        return Observation(kind, _TRUE, "Creating", "creating the Deployment")
    if deployment.deadline_exceeded_message is not None:
        return Observation(kind, _FALSE, "ProgressDeadlineExceeded", deployment.deadline_exceeded_message)
    if not deployment.is_rolled_out:
        return Observation(
            kind,
            _TRUE,
            "RollingOut",
            f"{deployment.updated_replicas} of {deployment.desired_replicas} pods updated, "
            f"{deployment.replicas} running",
        )
    figures = fleet.aggregate_fleet(facts.statusz, facts.config_hash)
    readable = figures.pods_probed - figures.pods_unreadable
    if figures.pods_on_current_config < readable:
        return Observation(
            kind,
            _TRUE,
            "ConfigRollingOut",
            f"{figures.pods_on_current_config} of {readable} pods run config {facts.config_hash}",
        )
    rollout = fleet.credential_rollout(facts.deepgram_key.fingerprint, facts.statusz)
    if rollout.pods and not rollout.complete:
        return Observation(
            kind,
            _TRUE,
            "CredentialRollingOut",
            f"{rollout.pods_on_current} of {rollout.pods} pods use key {rollout.current_fingerprint}",
        )
    return Observation(kind, _FALSE, "RolloutComplete", "every pod runs the current spec, config and key")


def observe_degraded(facts: FleetFacts, credentials: Observation) -> Observation:
    """Degraded: something needs a person (bad spec, stuck rollout, refused key, upstream down)."""
    kind = api.ConditionType.DEGRADED
    deployment = facts.deployment
    if facts.spec_problems:
        return Observation(kind, _TRUE, "InvalidSpec", "; ".join(facts.spec_problems))
    if deployment is not None and deployment.deadline_exceeded_message is not None:
        return Observation(kind, _TRUE, "ProgressDeadlineExceeded", deployment.deadline_exceeded_message)
    if deployment is not None and deployment.replica_failure_message is not None:
        return Observation(kind, _TRUE, "ReplicaFailure", deployment.replica_failure_message)
    if credentials.status is _FALSE:
        return Observation(kind, _TRUE, credentials.reason, credentials.message)
    figures = fleet.aggregate_fleet(facts.statusz)
    readable = figures.pods_probed - figures.pods_unreadable
    if readable and figures.breakers_open == readable:
        return Observation(kind, _TRUE, "UpstreamUnavailable", "every pod's upstream circuit breaker is open")
    if facts.skipped_children:
        # Last on purpose: serving works without it, so it never hides a problem with the pods.
        return Observation(kind, _TRUE, "OptionalKindUnavailable", "; ".join(facts.skipped_children))
    return Observation(kind, _FALSE, "AsExpected", "")


def observe_ready(facts: FleetFacts, available: Observation, credentials: Observation) -> Observation:
    """Ready: valid spec, not stuck, key not refused, and pods serving."""
    kind = api.ConditionType.READY
    deployment = facts.deployment
    if facts.spec_problems:
        return Observation(kind, _FALSE, "InvalidSpec", "; ".join(facts.spec_problems))
    if deployment is not None and deployment.deadline_exceeded_message is not None:
        return Observation(kind, _FALSE, "ProgressDeadlineExceeded", deployment.deadline_exceeded_message)
    if credentials.status is _FALSE:
        return Observation(kind, _FALSE, credentials.reason, credentials.message)
    if available.status is not _TRUE:
        return Observation(kind, _FALSE, available.reason, available.message)
    return Observation(kind, _TRUE, "Serving", available.message)


# What the HPA controller writes when it cannot read a metric: the reason of its ScalingActive=False and
# the words of its errors (pkg/controller/podautoscaler/horizontal.go, replica_calculator.go,
# metrics/client.go). Only an API that cannot be reached means something is missing; no samples yet is
# what every new pod looks like for its first scrapes.
_PODS_METRIC_FAILED = "FailedGetPodsMetric"
_RESOURCE_METRIC_FAILED = "FailedGetResourceMetric"
_CUSTOM_API_UNREACHABLE = "unable to fetch metrics from custom metrics API"
_RESOURCE_API_UNREACHABLE = "unable to fetch metrics from resource metrics API"
_NO_SAMPLES_YET = (
    "no metrics returned from",
    "did not receive metrics for targeted pods",
    "no pods returned",
)
_REQUEST_MISSING = "missing request for cpu"
STREAMS_METRIC_UNAVAILABLE = "StreamsMetricUnavailable"
RESOURCE_METRICS_UNAVAILABLE = "ResourceMetricsUnavailable"
CPU_REQUEST_MISSING = "CPURequestMissing"
AWAITING_METRICS = "AwaitingMetrics"
INSTALL_METRICS_ADAPTER = (
    f"install a custom metrics adapter that serves the Pods metric {SESSIONS_METRIC} through"
    " custom.metrics.k8s.io (prometheus-adapter with the rule in docs/autoscaling.md, or KEDA), or unset"
    " spec.autoscaling.targetActiveStreamsPerPod to scale on CPU only"
)
INSTALL_METRICS_SERVER = "install metrics-server (it serves metrics.k8s.io, the pods' CPU and memory)"


def observe_scaling_active(hpa: HpaFacts | None) -> Observation:
    """ScalingActive: the backend's HPA reads every metric it scales on; False says what to install."""
    kind = api.ConditionType.SCALING_ACTIVE
    if hpa is None:
        return Observation(
            kind, _UNKNOWN, "AutoscalerNotFound", "the HorizontalPodAutoscaler does not exist yet"
        )
    active = hpa.condition("ScalingActive")
    if active is None:
        return Observation(
            kind,
            _UNKNOWN,
            "AutoscalerNotEvaluated",
            "the HPA controller (kube-controller-manager) has not evaluated the autoscaler yet",
        )
    said = f"{active.reason}: {active.message}"
    if active.status == _FALSE and active.reason in (_PODS_METRIC_FAILED, _RESOURCE_METRIC_FAILED):
        if _CUSTOM_API_UNREACHABLE in active.message:
            message = f"the autoscaler cannot read {SESSIONS_METRIC} ({said}): {INSTALL_METRICS_ADAPTER}"
            return Observation(kind, _FALSE, STREAMS_METRIC_UNAVAILABLE, message)
        if _RESOURCE_API_UNREACHABLE in active.message:
            message = f"the autoscaler cannot read pod CPU ({said}): {INSTALL_METRICS_SERVER}"
            return Observation(kind, _FALSE, RESOURCE_METRICS_UNAVAILABLE, message)
        if _REQUEST_MISSING in active.message:
            message = f"CPU utilisation needs a CPU request ({said}): set spec.resources.requests.cpu"
            return Observation(kind, _FALSE, CPU_REQUEST_MISSING, message)
        if any(words in active.message for words in _NO_SAMPLES_YET):
            message = f"no samples for the pods yet ({said}); new pods have none for their first scrapes"
            return Observation(kind, _UNKNOWN, AWAITING_METRICS, message)
    status = api.ConditionStatus(active.status) if active.status in set(api.ConditionStatus) else _UNKNOWN
    message = active.message
    # Beside CPU the HPA stays active on CPU alone when the streams metric cannot be read; only its
    # report of the metrics it read shows that (and new pods have no samples at first), so it is said
    # here without a change of status.
    read = hpa.reported_metrics
    if SESSIONS_METRIC in hpa.wanted_metrics and read and SESSIONS_METRIC not in read:
        message += f"; {SESSIONS_METRIC} was not read, so it scales on CPU alone: {INSTALL_METRICS_ADAPTER}"
    return Observation(kind, status, active.reason or "AsReported", message)
