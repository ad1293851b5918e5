"""The Deployment controller's arithmetic: which pods to start and stop, and the status to report.

Pure functions. Pods are grouped by template hash instead of ReplicaSets: pods of the current template
are "new", the rest "old". A RollingUpdate starts new pods within `replicas + maxSurge` and stops old
ones only while `replicas - maxUnavailable` pods stay available; Recreate stops every old pod first.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TEMPLATE_HASH_LABEL = "pod-template-hash"
DEFAULT_SURGE = "25%"
DEFAULT_UNAVAILABLE = "25%"
DEFAULT_PROGRESS_DEADLINE_S = 600


def template_hash(template: Mapping[str, Any]) -> str:
    """A short stable hash of a pod template (the `pod-template-hash` label)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def resolve(value: int | str | None, replicas: int, *, round_up: bool, default: str) -> int:
    """An int-or-percent rollout bound in pods ("25%" of 4 → 1)."""
    raw = default if value is None else value
    if isinstance(raw, int):
        return max(raw, 0)
    text = str(raw).strip()
    if text.endswith("%"):
        share = float(text[:-1]) * replicas / 100
        return max(math.ceil(share) if round_up else math.floor(share), 0)
    return max(int(text), 0)


@dataclass(frozen=True, slots=True)
class Strategy:
    """How a Deployment replaces pods."""

    recreate: bool
    max_surge: int
    max_unavailable: int
    min_ready_s: float
    progress_deadline_s: float


def strategy_of(deployment: Mapping[str, Any]) -> Strategy:
    """The rollout bounds of a Deployment, resolved against its replica count."""
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    surge = resolve(rolling.get("maxSurge"), replicas, round_up=True, default=DEFAULT_SURGE)
    unavailable = resolve(
        rolling.get("maxUnavailable"), replicas, round_up=False, default=DEFAULT_UNAVAILABLE
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1  # as Kubernetes: both zero would never progress
    return Strategy(
        recreate=strategy.get("type") == "Recreate",
        max_surge=surge,
        max_unavailable=unavailable,
        min_ready_s=float(spec.get("minReadySeconds", 0)),
        progress_deadline_s=float(spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_S)),
    )


@dataclass(frozen=True, slots=True)
class PodView:
    """What the controller knows of one live (not terminating) pod."""

    name: str
    template_hash: str
    ready: bool
    available: bool
    created: float  # seconds on the runner's clock; newer pods go first on scale-down


@dataclass(frozen=True, slots=True)
class Plan:
    """Pods to start (of the current template) and pods to stop, by name."""

    start: int
    stop: tuple[str, ...]


def _victims(pods: Sequence[PodView], count: int) -> list[str]:
    # Not ready first, then the newest: the order the ReplicaSet controller prefers.
    ranked = sorted(pods, key=lambda pod: (pod.ready, pod.available, -pod.created))
    return [pod.name for pod in ranked[: max(count, 0)]]


def plan(
    replicas: int, strategy: Strategy, current_hash: str, pods: Sequence[PodView], terminating: int = 0
) -> Plan:
    """The next step towards `replicas` pods of `current_hash`, within the strategy's bounds."""
    new = [pod for pod in pods if pod.template_hash == current_hash]
    old = [pod for pod in pods if pod.template_hash != current_hash]
    if strategy.recreate:
        if old:
            return Plan(0, tuple(pod.name for pod in old))
        if terminating:
            return Plan(0, ())  # Recreate: no new pod while old ones are still going
    if len(new) > replicas:
        return Plan(0, tuple(_victims(new, len(new) - replicas)))
    stop: list[str] = []
    if old:
        # Old pods that are not ready cost no availability: stop them at once.
        stop += [pod.name for pod in old if not pod.ready]
        old_ready = [pod for pod in old if pod.ready]
        available = sum(pod.available for pod in (*new, *old_ready))
        budget = available - (replicas - strategy.max_unavailable)
        stop += _victims(old_ready, min(budget, len(old_ready)))
    remaining = len(pods) - len(stop)
    ceiling = replicas + (strategy.max_surge if old else 0)
    start = max(min(replicas - len(new), ceiling - remaining), 0)
    return Plan(start, tuple(stop))


@dataclass(frozen=True, slots=True)
class Counts:
    """The replica figures of a Deployment's status."""

    replicas: int
    updated: int
    ready: int
    available: int


def counts(current_hash: str, pods: Sequence[PodView]) -> Counts:
    """Replica figures over the live pods."""
    return Counts(
        replicas=len(pods),
        updated=sum(pod.template_hash == current_hash for pod in pods),
        ready=sum(pod.ready for pod in pods),
        available=sum(pod.available for pod in pods),
    )


def _condition(
    previous: Sequence[Mapping[str, Any]], kind: str, status: str, reason: str, message: str, now: str
) -> dict[str, Any]:
    before = next((c for c in previous if c.get("type") == kind), None)
    unchanged = before is not None and before.get("status") == status
    transition = str(before.get("lastTransitionTime", now)) if unchanged and before else now
    same = unchanged and before is not None and before.get("reason") == reason
    update = str(before.get("lastUpdateTime", now)) if same and before else now
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "lastUpdateTime": update,
    }


def deployment_status(
    deployment: Mapping[str, Any],
    figures: Counts,
    strategy: Strategy,
    progress_started: datetime.datetime | None,
    now: datetime.datetime,
) -> dict[str, Any]:
    """The Deployment's status: figures, observedGeneration, Available and Progressing conditions.

    `progress_started` is when the current rollout began (None when it is complete).
    """
    spec, metadata = deployment.get("spec") or {}, deployment.get("metadata") or {}
    replicas = int(spec.get("replicas", 1))
    previous = (deployment.get("status") or {}).get("conditions") or []
    stamp = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = str(metadata.get("name", ""))
    if figures.available >= replicas - strategy.max_unavailable:
        available = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        available = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    complete = figures.updated == replicas == figures.replicas and figures.available == replicas
    if complete:
        progressing = ("True", "NewReplicaSetAvailable", f'Deployment "{name}" has successfully progressed.')
    elif progress_started is not None and (now - progress_started).total_seconds() > (
        strategy.progress_deadline_s
    ):
        progressing = ("False", "ProgressDeadlineExceeded", f'Deployment "{name}" has timed out progressing.')
    else:
        progressing = ("True", "ReplicaSetUpdated", f'Deployment "{name}" is progressing.')
    status: dict[str, Any] = {
        "observedGeneration": int(metadata.get("generation", 1)),
        "replicas": figures.replicas,
        "updatedReplicas": figures.updated,
        "readyReplicas": figures.ready,
        "availableReplicas": figures.available,
        "unavailableReplicas": max(replicas - figures.available, 0),
        "conditions": [
            _condition(previous, "Available", *available, stamp),
            _condition(previous, "Progressing", *progressing, stamp),
        ],
    }
    return status
