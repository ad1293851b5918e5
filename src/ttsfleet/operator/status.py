"""The status patch of a TTSBackend, assembled from observed facts (pure: time is an argument).

Nothing in it changes unless the facts do (no probe timestamps), so a handler can skip the patch
when it equals the stored status: an idle backend costs no status writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ttsfleet.operator import api, conditions, fleet
from ttsfleet.operator.facts import FleetFacts, HpaFacts


def compute_status(
    facts: FleetFacts,
    previous: Sequence[api.Condition],
    now: datetime,
    *,
    selector: str,
    endpoint: str,
) -> dict[str, Any]:
    """The `status` to write: observedGeneration, conditions, replicas, selector, endpoint, fleet figures."""
    deployment = facts.deployment
    status = api.TTSBackendStatus(
        observed_generation=facts.generation,
        conditions=conditions.compute_conditions(facts, previous, now),
        replicas=deployment.replicas if deployment else 0,
        ready_replicas=deployment.ready_replicas if deployment else 0,
        updated_replicas=deployment.updated_replicas if deployment else 0,
        available_replicas=deployment.available_replicas if deployment else 0,
        selector=selector,
        endpoint=endpoint,
        config_hash=facts.config_hash,
        credentials=fleet.credential_rollout(facts.deepgram_key.fingerprint, facts.statusz),
        fleet=fleet.aggregate_fleet(facts.statusz, facts.config_hash),
        autoscaling=mirror_autoscaler(facts.hpa) if facts.autoscaled else None,
    )
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def mirror_autoscaler(hpa: HpaFacts | None) -> api.AutoscalingStatus:
    """The HPA's replicas and its AbleToScale, ScalingActive and ScalingLimited conditions, as reported."""
    if hpa is None:
        return api.AutoscalingStatus()
    return api.AutoscalingStatus.model_validate(
        {
            "desiredReplicas": hpa.desired_replicas,
            "currentReplicas": hpa.current_replicas,
            "lastScaleTime": hpa.last_scale_time,
            "conditions": [
                {
                    "type": condition.type,
                    "status": condition.status,
                    "reason": condition.reason,
                    "message": condition.message,
                    "lastTransitionTime": condition.last_transition_time,
                }
                for condition in hpa.conditions
                if condition.type in MIRRORED_HPA_CONDITIONS
            ],
        }
    )


# The conditions autoscaling/v2 defines; anything else an HPA carries is not ours to copy.
MIRRORED_HPA_CONDITIONS = ("AbleToScale", "ScalingActive", "ScalingLimited")


def merge_patch(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch turning `stored` into `wanted`, or None when they are equal.

    A field `wanted` lacks is sent as an explicit null: a merge patch keeps what it does not mention,
    so a vanished field (a fingerprint after its Secret was deleted) would otherwise stay stored, differ
    from every computed status, and be patched again on every probe tick. Lists are replaced whole.
    """
    patch: dict[str, Any] = {}
    for key in stored.keys() - wanted.keys():
        patch[key] = None
    for key, value in wanted.items():
        before = stored.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested is not None:
                patch[key] = nested
        elif before != value:
            patch[key] = value
    return patch or None


def condition_of(status: api.TTSBackendStatus, kind: api.ConditionType) -> api.Condition | None:
    """The condition of type `kind`, if the status has one."""
    return next((condition for condition in status.conditions if condition.type == kind), None)


def is_converged(status: api.TTSBackendStatus, generation: int) -> bool:
    """Ready is True and the status describes the latest generation (what `kubectl wait` should mean)."""
    ready = condition_of(status, api.ConditionType.READY)
    return (
        ready is not None
        and ready.status is api.ConditionStatus.TRUE
        and status.observed_generation is not None
        and status.observed_generation >= generation
    )
