"""Scheduled Deepgram key rotation as a state machine (pure: the next step from the record, facts and now).

A rotation is: mint a key (its id recorded in status before anything else uses it), install it in the
key Secret, wait until every pod serves with it (the reload path reports this in status.credentials),
promote it, and delete the previous key after the grace period. `next_step` picks the one step to take
from what is recorded and observed, so a restarted operator continues where the last one stopped:

- a key minted whose id never reached the status is an orphan: it carries the backend in its comment
  and is deleted before the next mint (`orphans`);
- a key recorded but not installed, whose secret this operator no longer holds (a restart), is deleted
  and a fresh one minted;
- a key already in the Secret is waited on, whatever the recorded phase;
- a mint starts only when no rotation is in flight, so two rotations never overlap.

The `after_*` functions give the record after a step succeeded; `after_failure` schedules a retry with
exponential backoff. Keys never pass through here: only ids, fingerprints and times.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ttsfleet.operator import api

Phase = api.KeyRotationPhase
Record = api.KeyRotationStatus

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0


class Action(enum.StrEnum):
    """What the I/O edge does for a step."""

    WAIT = "wait"
    MINT = "mint"  # delete orphans, create a key, record its id
    INSTALL = "install"  # write the recorded key into the key Secret
    DISCARD = "discard"  # delete a recorded key that was never installed
    PROMOTE = "promote"  # every pod serves with the new key: record it as current (status only)
    RETIRE = "retire"  # delete the previous key after the grace period


@dataclass(frozen=True, slots=True)
class Step:
    """The one thing to do now; `until` is when to look again when waiting."""

    action: Action
    reason: str
    message: str
    key_id: str | None = None
    until: datetime | None = None
    expiration: datetime | None = None


@dataclass(frozen=True, slots=True)
class Observed:
    """What the operator sees of a backend besides the record."""

    secret_fingerprint: str | None  # the key Secret's value now
    rollout: api.CredentialRollout | None  # status.credentials: which keys the pods serve with
    requested: str | None  # the rotate-key annotation
    holding_pending: bool  # this operator process holds the pending key's secret (minted it)


def comment_prefix(namespace: str, name: str) -> str:
    """How a minted key's comment names its backend; orphans are found by it."""
    return f"ttsfleet {namespace}/{name} "


def comment_for(namespace: str, name: str, now: datetime) -> str:
    return f"{comment_prefix(namespace, name)}rotation {api.format_time(now)}"


def orphans(listed: Iterable[tuple[str, str]], record: Record | None, namespace: str, name: str) -> list[str]:
    """Ids of keys minted for this backend (by comment) that the record does not know: never installed."""
    known = {record.current_key_id, record.pending_key_id, record.retiring_key_id} if record else set()
    prefix = comment_prefix(namespace, name)
    return [key_id for key_id, comment in listed if comment.startswith(prefix) and key_id not in known]


def expiration_for(spec: api.KeyManagementSpec, now: datetime) -> datetime:
    """A little past the next rotation: the key outlives a late rotation, not a forgotten one."""
    return now + timedelta(
        seconds=spec.interval_seconds + spec.grace_period_seconds + spec.expiry_slack_seconds
    )


def due_at(spec: api.KeyManagementSpec, record: Record) -> datetime | None:
    """When the next scheduled rotation starts (None: now, nothing was rotated yet)."""
    if record.last_rotation is None:
        return None
    scheduled = record.last_rotation + timedelta(seconds=spec.interval_seconds)
    if record.current_key_expires is not None:
        # Rotate before the current key expires even when the interval grew since it was minted.
        before_expiry = record.current_key_expires - timedelta(
            seconds=spec.grace_period_seconds + spec.expiry_slack_seconds / 2
        )
        scheduled = min(scheduled, before_expiry)
    return scheduled


def _rolled_out(fingerprint: str, rollout: api.CredentialRollout | None) -> bool:
    if rollout is None or rollout.current_fingerprint != fingerprint:
        return False
    return rollout.complete or (rollout.pods == 0 and not rollout.stale_fingerprints)


def next_step(spec: api.KeyManagementSpec, record: Record | None, observed: Observed, now: datetime) -> Step:
    """The step to take now."""
    record = record or Record()
    if record.retry_at is not None and now < record.retry_at:
        return Step(Action.WAIT, "RetryBackoff", record.message, until=record.retry_at)
    if record.pending_key_id is not None:
        pending = record.pending_key_id
        if (
            record.pending_fingerprint is not None
            and observed.secret_fingerprint == record.pending_fingerprint
        ):
            if _rolled_out(record.pending_fingerprint, observed.rollout):
                return Step(Action.PROMOTE, "KeyServing", f"every pod serves with key {pending}", pending)
            return Step(Action.WAIT, "WaitingForPods", f"waiting until every pod serves with key {pending}")
        if record.phase is Phase.MINTED and observed.holding_pending:
            return Step(Action.INSTALL, "KeyInstalled", f"key {pending} written to the key Secret", pending)
        return Step(
            Action.DISCARD,
            "KeyDiscarded",
            f"key {pending} was minted, never installed (operator restart or Secret replaced): deleting it",
            pending,
        )
    if record.retiring_key_id is not None:
        retiring = record.retiring_key_id
        if record.grace_ends is None or now >= record.grace_ends:
            return Step(Action.RETIRE, "PreviousKeyDeleted", f"previous key {retiring} deleted", retiring)
        return Step(
            Action.WAIT,
            "GracePeriod",
            f"previous key {retiring} deleted after grace",
            until=record.grace_ends,
        )
    due = due_at(spec, record)
    if due is None:
        why = "FirstRotation"
    elif observed.requested and observed.requested != record.handled_request:
        why = "RotationRequested"
    elif now >= due:
        why = "RotationDue"
    else:
        return Step(Action.WAIT, "Scheduled", f"next rotation at {api.format_time(due)}", until=due)
    expiration = expiration_for(spec, now)
    return Step(
        Action.MINT,
        why,
        f"minting a key expiring {api.format_time(expiration)}",
        expiration=expiration,
    )


def _succeeded(record: Record, step: Step, **changes: object) -> Record:
    return record.model_copy(
        update={
            "failures": 0,
            "retry_at": None,
            "last_error": None,
            "reason": step.reason,
            "message": step.message,
            **changes,
        }
    )


def after_mint(
    record: Record | None, step: Step, key_id: str, fingerprint: str, expires: datetime | None
) -> Record:
    """The minted key's id is recorded before the key is written anywhere."""
    return _succeeded(
        record or Record(),
        step,
        phase=Phase.MINTED,
        pending_key_id=key_id,
        pending_fingerprint=fingerprint,
        pending_key_expires=expires,
        message=f"key {key_id} minted ({step.reason})",
    )


def after_install(record: Record, step: Step) -> Record:
    return _succeeded(record, step, phase=Phase.INSTALLED)


def after_discard(record: Record, step: Step) -> Record:
    return _succeeded(
        record,
        step,
        phase=Phase.IDLE,
        pending_key_id=None,
        pending_fingerprint=None,
        pending_key_expires=None,
    )


def after_promote(
    record: Record, step: Step, spec: api.KeyManagementSpec, requested: str | None, now: datetime
) -> Record:
    """The new key serves everywhere: it becomes current, the previous one starts its grace period."""
    previous = record.current_key_id
    message = step.message + (
        f"; previous key {previous} deleted after {spec.grace_period_seconds} s"
        if previous
        else "; the previous key was not minted by the operator: delete it at Deepgram yourself"
    )
    return _succeeded(
        record,
        step,
        message=message,
        phase=Phase.GRACE if previous else Phase.IDLE,
        current_key_id=record.pending_key_id,
        current_key_expires=record.pending_key_expires,
        pending_key_id=None,
        pending_fingerprint=None,
        pending_key_expires=None,
        retiring_key_id=previous,
        grace_ends=now + timedelta(seconds=spec.grace_period_seconds) if previous else None,
        last_rotation=now,
        next_rotation=now + timedelta(seconds=spec.interval_seconds),
        rotations=record.rotations + 1,
        handled_request=requested,
    )


def after_retire(record: Record, step: Step) -> Record:
    return _succeeded(record, step, phase=Phase.IDLE, retiring_key_id=None, grace_ends=None)


def backoff_s(failures: int) -> float:
    """Seconds before the next try after `failures` failures in a row (doubling, capped)."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, failures - 1)))


def after_failure(record: Record | None, step: Step, error: str, now: datetime) -> Record:
    """A failed step is tried again after a backoff; the record says what failed (never a key)."""
    record = record or Record()
    failures = record.failures + 1
    return record.model_copy(
        update={
            "failures": failures,
            "retry_at": now + timedelta(seconds=backoff_s(failures)),
            "last_error": f"{step.action.value} failed: {error}"[:1024],
            "reason": "KeyApiFailed",
            "message": f"{step.action.value} failed ({failures} in a row), retried with backoff",
        }
    )
