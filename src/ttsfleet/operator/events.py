"""Which Events a status change deserves: domain reasons on transitions, never on every probe (pure).

An Event is news: a reason is posted when the condition carrying it appears, not again while it
persists, so an idle or a steadily broken backend posts nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ttsfleet.operator import api, conditions, status


class Reason(enum.StrEnum):
    """Event reasons the operator posts on a TTSBackend."""

    RECONCILED = "Reconciled"
    INVALID_SPEC = "InvalidSpec"
    CREDENTIAL_ROTATED = "CredentialRotated"
    CREDENTIAL_ROTATION_COMPLETE = "CredentialRotationComplete"
    UPSTREAM_AUTH_FAILED = "UpstreamAuthFailed"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    RECONCILE_FAILED = "ReconcileFailed"
    OPTIONAL_KIND_UNAVAILABLE = "OptionalKindUnavailable"
    SHARES_DIVIDED = "SharesDivided"
    STREAMS_METRIC_UNAVAILABLE = conditions.STREAMS_METRIC_UNAVAILABLE
    RESOURCE_METRICS_UNAVAILABLE = conditions.RESOURCE_METRICS_UNAVAILABLE
    CPU_REQUEST_MISSING = conditions.CPU_REQUEST_MISSING


class EventType(enum.StrEnum):
    """Kubernetes Event types."""

    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True, slots=True)
class Notice:
    """An Event to post."""

    type: EventType
    reason: Reason
    message: str


# (condition, reason on it) → the Event posted when that reason appears.
_WATCHED: tuple[tuple[api.ConditionType, Reason], ...] = (
    (api.ConditionType.DEGRADED, Reason.INVALID_SPEC),
    (api.ConditionType.DEGRADED, Reason.PROGRESS_DEADLINE_EXCEEDED),
    (api.ConditionType.CREDENTIALS_VALID, Reason.UPSTREAM_AUTH_FAILED),
    (api.ConditionType.DEGRADED, Reason.OPTIONAL_KIND_UNAVAILABLE),
    (api.ConditionType.SCALING_ACTIVE, Reason.STREAMS_METRIC_UNAVAILABLE),
    (api.ConditionType.SCALING_ACTIVE, Reason.RESOURCE_METRICS_UNAVAILABLE),
    (api.ConditionType.SCALING_ACTIVE, Reason.CPU_REQUEST_MISSING),
)


def _reason_of(state: api.TTSBackendStatus | None, kind: api.ConditionType) -> tuple[str, str] | None:
    if state is None:
        return None
    condition = status.condition_of(state, kind)
    if condition is None:
        return None
    return condition.reason, condition.message


def transitions(previous: api.TTSBackendStatus | None, current: api.TTSBackendStatus) -> list[Notice]:
    """Events for what changed between two statuses of one backend."""
    notices = []
    for kind, reason in _WATCHED:
        before, after = _reason_of(previous, kind), _reason_of(current, kind)
        if after is not None and after[0] == reason and (before is None or before[0] != reason):
            notices.append(Notice(EventType.WARNING, reason, after[1]))
    was, now = previous.credentials if previous else None, current.credentials
    if was is not None and was.stale_fingerprints and now is not None and now.complete:
        notices.append(
            Notice(
                EventType.NORMAL,
                Reason.CREDENTIAL_ROTATION_COMPLETE,
                f"every pod uses key {now.current_fingerprint}; old key(s) "
                f"{', '.join(was.stale_fingerprints)} may be revoked",
            )
        )
    return notices
