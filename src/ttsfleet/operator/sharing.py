"""Dividing a backend's fleet-wide budgets among its pods (pure: the pods and their reports are arguments).

Two budgets are divided: the project-wide upstream socket budget (Deepgram limits concurrency per
project, docs/operator.md "Fleet-wide budgets") and the per-token character rate. The division is the
shares file (docs/contracts.md) the pods read from a ConfigMap without a restart.

Sockets are divided so that the sum of what every pod may hold never exceeds the budget, even while
pods read the new division at different moments: a pod's share is lowered at once, but raised only out
of sockets no pod may still hold. What a pod may hold (`held`) is the most of its written share, the
share it last reported applying, and the sockets it reported open or connecting; it is kept in the
document itself, so an operator restart forgets none of it. A pod that has read the latest revision
holds only that revision's share (and what it still has open above it, closing as utterances end).

The character rate is a rate, not a count of things held: each counted pod gets an even part at once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ttsfleet.operator import fleet


@dataclass(frozen=True, slots=True)
class Division:
    """One revision of the shares file; `held` is bookkeeping the pods ignore."""

    revision: int = 0
    sockets: Mapping[str, int] = field(default_factory=dict)  # by pod; empty without a socket budget
    chars_per_minute_per_token: Mapping[str, int] = field(default_factory=dict)  # by pod
    unlisted_chars_per_minute_per_token: int | None = None  # for pods not counted yet
    socket_budget: int | None = None
    held: Mapping[str, int] = field(default_factory=dict)  # sockets each pod may still hold, by pod

    def to_json(self) -> str:
        """The shares file (docs/contracts.md), byte-stable for equal divisions."""
        pods: dict[str, dict[str, int]] = {}
        for pod in sorted({*self.sockets, *self.chars_per_minute_per_token}):
            entry = pods[pod] = {}
            if pod in self.sockets:
                entry["upstream_sockets"] = self.sockets[pod]
            if pod in self.chars_per_minute_per_token:
                entry["chars_per_minute_per_token"] = self.chars_per_minute_per_token[pod]
        unlisted: dict[str, int] = {}
        if self.socket_budget is not None:
            unlisted["upstream_sockets"] = 0  # a pod not counted yet waits for its share
        if self.unlisted_chars_per_minute_per_token is not None:
            unlisted["chars_per_minute_per_token"] = self.unlisted_chars_per_minute_per_token
        document = {
            "revision": self.revision,
            "budget": {"upstream_sockets": self.socket_budget},
            "pods": pods,
            "unlisted": unlisted,
            "held": dict(sorted(self.held.items())),
        }
        return json.dumps(document, sort_keys=False, separators=(",", ":"))


def _counts(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}


def describe(division: Division) -> str:
    """The division in a line for an Event: each pod's socket share (or per-token rate), and what pods
    may still hold above their new shares."""
    if division.socket_budget is None:
        rates = ", ".join(
            f"{pod} {rate}" for pod, rate in sorted(division.chars_per_minute_per_token.items())
        )
        return f"per-token characters per minute divided (revision {division.revision}): {rates or 'no pods'}"
    shares = ", ".join(f"{pod} {share}" for pod, share in sorted(division.sockets.items()))
    above = sum(division.held.values()) - sum(division.sockets.values())
    waiting = f"; {above} sockets still held above the new shares" if above > 0 else ""
    return (
        f"upstream socket budget {division.socket_budget} divided (revision {division.revision}): "
        f"{shares or 'no pods'}{waiting}"
    )


def parse_division(text: str | None) -> Division | None:
    """A division as written by `Division.to_json`; None when there is none or it is not ours."""
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    raw_pods = document.get("pods")
    pods = (
        {pod: entry for pod, entry in raw_pods.items() if isinstance(entry, dict)}
        if isinstance(raw_pods, dict)
        else {}
    )
    revision = document.get("revision")
    budget = (document.get("budget") or {}).get("upstream_sockets")
    unlisted = (document.get("unlisted") or {}).get("chars_per_minute_per_token")
    return Division(
        revision=revision if isinstance(revision, int) and revision >= 0 else 0,
        sockets=_counts({pod: entry.get("upstream_sockets") for pod, entry in pods.items()}),
        chars_per_minute_per_token=_counts(
            {pod: entry.get("chars_per_minute_per_token") for pod, entry in pods.items()}
        ),
        unlisted_chars_per_minute_per_token=unlisted if isinstance(unlisted, int) else None,
        socket_budget=budget if isinstance(budget, int) else None,
        held=_counts(document.get("held")),
    )


def divide_evenly(total: int, pods: Sequence[str]) -> dict[str, int]:
    """`total` split among `pods` (in the given order), the first `total % len(pods)` one more."""
    if not pods:
        return {}
    base, extra = divmod(total, len(pods))
    return {pod: base + (index < extra) for index, pod in enumerate(pods)}


def held_now(
    previous: Division, present: Sequence[str], reports: Sequence[fleet.PodReport]
) -> dict[str, int]:
    """Sockets each present pod may hold right now, by what was written and what the pods reported.

    A pod that reported the latest revision holds its share there (or more while it closes sockets
    above it); any other pod may still hold anything it was ever given and not yet seen to give back.
    """
    by_pod = {report.pod: report for report in reports}
    held: dict[str, int] = {}
    for pod in present:
        written = previous.sockets.get(pod, 0)
        report = by_pod.get(pod)
        in_use = report.upstream.open_sockets + report.upstream.connecting_sockets if report else 0
        if report is not None and report.share.revision == previous.revision:
            held[pod] = max(written, in_use)
        else:
            held[pod] = max(previous.held.get(pod, 0), written, in_use)
    return held


def divide_sockets(
    budget: int, members: Sequence[str], written: Mapping[str, int], held: Mapping[str, int]
) -> tuple[dict[str, int], dict[str, int]]:
    """The next socket shares of `members` and what every pod may then hold, never over `budget`.

    `written` are the current shares, `held` what each present pod (members and pods on their way
    out) may hold now. Lowered shares apply at once; raised ones only out of the budget nobody holds,
    in member order, so a new pod waits until the others have given back what it is to get.
    """
    target = divide_evenly(budget, members)
    shares = {pod: min(target[pod], written.get(pod, 0)) for pod in members}
    committed = {pod: max(held.get(pod, 0), shares.get(pod, 0)) for pod in {*held, *shares}}
    free = budget - sum(committed.values())
    for pod in members:
        wanted = target[pod] - shares[pod]
        if wanted <= 0:
            continue
        # Up to what the pod already holds costs nothing more; beyond it, only what is free.
        room = committed[pod] - shares[pod] + max(0, free)
        granted = min(wanted, room)
        cost = max(0, shares[pod] + granted - committed[pod])
        shares[pod] += granted
        committed[pod] += cost
        free -= cost
    return shares, committed


def next_division(
    previous: Division | None,
    *,
    socket_budget: int | None,
    chars_per_minute_per_token: int,
    members: Sequence[str],
    present: Sequence[str],
    reports: Sequence[fleet.PodReport],
) -> Division:
    """The division to write: `members` are the pods counted (running, not on their way out), in name
    order; `present` every pod that still exists (members and terminating ones); `reports` their
    /statusz. The revision goes up only when the shares change."""
    previous = previous or Division()
    members = sorted(members)
    chars = {pod: max(1, share) for pod, share in divide_evenly(chars_per_minute_per_token, members).items()}
    unlisted = max(1, chars_per_minute_per_token // (len(members) + 1))
    if socket_budget is None:
        sockets: dict[str, int] = {}
        held: dict[str, int] = {}
    else:
        now = held_now(previous, sorted({*present, *members}), reports)
        sockets, held = divide_sockets(socket_budget, members, previous.sockets, now)
    candidate = Division(previous.revision, sockets, chars, unlisted, socket_budget, held)
    if dataclasses.replace(candidate, held=previous.held) == previous:
        return candidate  # the same shares: pods need not notice, only the bookkeeping may move
    return dataclasses.replace(candidate, revision=previous.revision + 1)
