"""Before kopf watches anything: may this operator list and watch what it follows?

kopf treats a forbidden watch as a failed request: it retries, then lets the watcher die with a
traceback, and since every index must be filled before any handler runs, the operator hangs. So the
operator first asks the apiserver (SelfSubjectAccessReviews, which every authenticated user may
make) about each list and watch it needs; while any is refused it says so — one log line per refusal,
naming the resource, the verb and the namespace; Degraded/WatchForbidden and a Warning Event on every
backend it can see — and asks again, starting kopf only once RBAC grants them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ttsfleet.operator import errors, kube

logger = logging.getLogger(__name__)

REASON = "WatchForbidden"
VERBS = ("list", "watch")
REVIEWS = kube.Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", namespaced=False)
EVENTS = kube.Resource("", "v1", "events")
PEERINGS = kube.Resource("kopf.dev", "v1", "kopfpeerings")
# What kopf follows for the operator's handlers and indices (handlers.py): the backends, the labelled
# key Secrets, the Deployments and the gateway pods.
WATCHED = (kube.TTSBACKENDS, kube.SECRETS, kube.DEPLOYMENTS, kube.PODS)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A list or watch RBAC does not grant."""

    resource: kube.Resource
    verb: str
    namespace: str | None  # None: cluster-wide

    def describe(self) -> str:
        group = f".{self.resource.group}" if self.resource.group else ""
        where = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.verb} on {self.resource.plural}{group} {where}"


def needed(namespaces: Sequence[str], *, peering: bool) -> list[Refusal]:
    """Every (resource, verb, namespace) kopf will list and watch; each a refusal until granted."""
    resources = (*WATCHED, PEERINGS) if peering else WATCHED
    scopes: Sequence[str | None] = namespaces or (None,)
    return [Refusal(resource, verb, scope) for scope in scopes for resource in resources for verb in VERBS]


def review_of(candidate: Refusal) -> dict[str, Any]:
    """The SelfSubjectAccessReview asking about one list or watch."""
    attributes = {
        "group": candidate.resource.group,
        "resource": candidate.resource.plural,
        "verb": candidate.verb,
    }
    if candidate.namespace:
        attributes["namespace"] = candidate.namespace
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def summary(refusals: Iterable[Refusal]) -> str:
    """One sentence for a condition or Event: what RBAC refuses and what to do."""
    listed = "; ".join(refusal.describe() for refusal in refusals)
    return (
        f"RBAC does not grant the operator {listed}: it cannot follow these objects, so nothing is "
        "reconciled. Grant them (the chart's Role/ClusterRole does) and the operator starts by itself."
    )


def degraded_conditions(
    previous: Sequence[Mapping[str, Any]], message: str, generation: int, now: datetime
) -> list[dict[str, Any]]:
    """The backend's conditions with Degraded/WatchForbidden (True) and Ready False for the same reason;
    a condition keeps its transition time unless its status flips."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    wanted = {"Degraded": "True", "Ready": "False"}
    conditions = [dict(entry) for entry in previous if entry.get("type") not in wanted]
    for kind, status in wanted.items():
        before = next((entry for entry in previous if entry.get("type") == kind), None)
        since = before.get("lastTransitionTime") if before and before.get("status") == status else None
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": REASON,
                "message": message,
                "lastTransitionTime": since or stamp,
                "observedGeneration": generation,
            }
        )
    return conditions


def is_reported(conditions: Sequence[Mapping[str, Any]], message: str) -> bool:
    """Whether a backend already says Degraded/WatchForbidden with this message (no patch, no Event)."""
    return any(
        entry.get("type") == "Degraded" and entry.get("reason") == REASON and entry.get("message") == message
        for entry in conditions
    )


def warning_event(backend: Mapping[str, Any], message: str, now: datetime) -> dict[str, Any]:
    """A Warning Event on a backend, as kopf would post it."""
    metadata = backend["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{metadata['name']}-", "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": backend["apiVersion"],
            "kind": backend["kind"],
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
        },
        "type": "Warning",
        "reason": REASON,
        "message": message,
        "source": {"component": "ttsfleet-operator"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def refusals(client: kube.KubeClient, candidates: Iterable[Refusal]) -> list[Refusal] | None:
    """The candidates RBAC refuses; None when the API cannot review access (the embedded API)."""
    refused = []
    for candidate in candidates:
        try:
            answer = await client.create(REVIEWS, None, review_of(candidate))
        except errors.ApiNotFound:
            return None
        if not (answer.get("status") or {}).get("allowed"):
            refused.append(candidate)
    return refused


async def report_on_backends(
    client: kube.KubeClient, refused: Sequence[Refusal], namespaces: Sequence[str], now: datetime
) -> None:
    """Degraded and a Warning Event on each backend the operator may list (others only get the log)."""
    message = summary(refused)
    for namespace in namespaces or (None,):
        try:
            backends = await client.list(kube.TTSBACKENDS, namespace)
        except errors.ApiError:
            continue  # the backends themselves cannot be listed: the log line is all there is
        for backend in backends:
            metadata = backend["metadata"]
            previous = (backend.get("status") or {}).get("conditions") or []
            if is_reported(previous, message):
                continue
            patch = {
                "status": {"conditions": degraded_conditions(previous, message, metadata["generation"], now)}
            }
            try:
                await client.merge_patch(
                    kube.TTSBACKENDS, metadata["namespace"], metadata["name"], patch, subresource="status"
                )
                await client.create(EVENTS, metadata["namespace"], warning_event(backend, message, now))
            except errors.ApiError as exc:
                logger.warning("could not report the refused watches on %s: %s", metadata["name"], exc)


async def wait_until_granted(
    client: kube.KubeClient,
    namespaces: Sequence[str],
    *,
    peering: bool,
    recheck_s: float,
    clock: Callable[[], datetime],
) -> None:
    """Return once RBAC grants every list and watch; until then log each refusal once, and put them on
    every backend that does not say so yet (backends created meanwhile too)."""
    reported: list[Refusal] = []
    while True:
        refused = await refusals(client, needed(namespaces, peering=peering))
        if not refused:
            if reported:
                logger.info("RBAC now grants every list and watch the operator needs; starting")
            return
        for refusal in refused:
            if refusal not in reported:
                logger.error("RBAC forbids %s: the operator cannot start watching it", refusal.describe())
                reported.append(refusal)
        await report_on_backends(client, refused, namespaces, clock())
        await asyncio.sleep(recheck_s)  # RBAC changes are not watchable without the grants we lack
