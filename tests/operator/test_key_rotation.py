"""The key rotation state machine (pure): every step from the record, what is observed, and now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ttsfleet.operator import api
from ttsfleet.operator import key_rotation as machine

Action, Phase = machine.Action, api.KeyRotationPhase
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = api.KeyManagementSpec.model_validate(
    {
        "adminKeySecretRef": {"name": "deepgram-admin"},
        "projectId": "proj-1",
        "intervalSeconds": 3600,
        "gracePeriodSeconds": 60,
        "expirySlackSeconds": 600,
    }
)
OLD_FP, NEW_FP = "fp-old", "fp-new"


def observed(
    secret: str | None = OLD_FP,
    serving: str | None = OLD_FP,
    *,
    complete: bool = True,
    pods: int = 2,
    requested: str | None = None,
    holding: bool = False,
) -> machine.Observed:
    rollout = api.CredentialRollout(
        current_fingerprint=secret, pods=pods, complete=complete and serving == secret
    )
    return machine.Observed(secret, rollout, requested, holding)


def minted(record: api.KeyRotationStatus | None = None, now: datetime = T0) -> api.KeyRotationStatus:
    step = machine.next_step(SPEC, record, observed(), now)
    assert step.action is Action.MINT
    return machine.after_mint(record, step, "key-2", NEW_FP, step.expiration)


def promoted(now: datetime = T0) -> api.KeyRotationStatus:
    """A backend whose operator-minted key-1 was replaced by key-2 at `now`."""
    first = api.KeyRotationStatus(current_key_id="key-1", last_rotation=now - timedelta(hours=2))
    record = machine.after_install(minted(first, now), machine.Step(Action.INSTALL, "KeyInstalled", ""))
    step = machine.next_step(SPEC, record, observed(NEW_FP, NEW_FP), now)
    assert step.action is Action.PROMOTE
    return machine.after_promote(record, step, SPEC, None, now)


def test_a_backend_never_rotated_mints_at_once_with_an_expiry_past_the_next_rotation() -> None:
    step = machine.next_step(SPEC, None, observed(), T0)
    assert (step.action, step.reason) == (Action.MINT, "FirstRotation")
    assert step.expiration == T0 + timedelta(seconds=3600 + 60 + 600)


def test_the_minted_key_id_is_recorded_then_installed_by_the_process_holding_it() -> None:
    record = minted()
    assert (record.phase, record.pending_key_id, record.pending_fingerprint) == (
        Phase.MINTED,
        "key-2",
        NEW_FP,
    )
    step = machine.next_step(SPEC, record, observed(holding=True), T0)
    assert (step.action, step.key_id) == (Action.INSTALL, "key-2")


def test_a_key_minted_but_never_installed_is_discarded_after_a_restart() -> None:
    record = minted()
    step = machine.next_step(SPEC, record, observed(holding=False), T0)  # a new process holds nothing
    assert (step.action, step.key_id) == (Action.DISCARD, "key-2")
    after = machine.after_discard(record, step)
    assert after.pending_key_id is None and after.phase is Phase.IDLE
    assert machine.next_step(SPEC, after, observed(), T0).action is Action.MINT  # the rotation starts again


def test_an_installed_key_is_waited_on_until_every_pod_serves_with_it_whatever_the_phase() -> None:
    record = minted()  # the Secret was written, the operator died before recording Installed
    waiting = machine.next_step(SPEC, record, observed(NEW_FP, OLD_FP, complete=False), T0)
    assert (waiting.action, waiting.reason) == (Action.WAIT, "WaitingForPods")
    stale_status = machine.next_step(SPEC, record, observed(NEW_FP, NEW_FP, complete=False), T0)
    assert stale_status.action is Action.WAIT
    assert machine.next_step(SPEC, record, observed(NEW_FP, NEW_FP), T0).action is Action.PROMOTE


def test_with_no_pods_the_installed_key_is_promoted() -> None:
    record = minted()
    step = machine.next_step(SPEC, record, observed(NEW_FP, None, complete=False, pods=0), T0)
    assert step.action is Action.PROMOTE


def test_promotion_starts_the_grace_period_of_the_previous_key_then_deletes_it() -> None:
    record = promoted()
    assert (record.current_key_id, record.retiring_key_id, record.phase) == ("key-2", "key-1", Phase.GRACE)
    assert record.rotations == 1 and record.next_rotation == T0 + timedelta(hours=1)
    during = machine.next_step(SPEC, record, observed(NEW_FP, NEW_FP), T0 + timedelta(seconds=59))
    assert (during.action, during.until) == (Action.WAIT, T0 + timedelta(seconds=60))
    after = machine.next_step(SPEC, record, observed(NEW_FP, NEW_FP), T0 + timedelta(seconds=60))
    assert (after.action, after.key_id) == (Action.RETIRE, "key-1")
    retired = machine.after_retire(record, after)
    assert retired.retiring_key_id is None and retired.phase is Phase.IDLE


def test_a_key_not_minted_by_the_operator_is_left_to_its_owner() -> None:
    record = machine.after_install(minted(), machine.Step(Action.INSTALL, "KeyInstalled", ""))
    step = machine.next_step(SPEC, record, observed(NEW_FP, NEW_FP), T0)
    after = machine.after_promote(record, step, SPEC, None, T0)
    assert after.retiring_key_id is None and after.phase is Phase.IDLE
    assert "delete it at Deepgram yourself" in after.message


def test_the_next_rotation_is_due_after_the_interval_or_on_request() -> None:
    record = machine.after_retire(promoted(), machine.Step(Action.RETIRE, "PreviousKeyDeleted", ""))
    quiet = machine.next_step(SPEC, record, observed(NEW_FP, NEW_FP), T0 + timedelta(minutes=30))
    assert (quiet.action, quiet.until) == (Action.WAIT, T0 + timedelta(hours=1))
    due = machine.next_step(SPEC, record, observed(NEW_FP, NEW_FP), T0 + timedelta(hours=1))
    assert (due.action, due.reason) == (Action.MINT, "RotationDue")
    asked = machine.next_step(
        SPEC, record, observed(NEW_FP, NEW_FP, requested="now"), T0 + timedelta(minutes=1)
    )
    assert (asked.action, asked.reason) == (Action.MINT, "RotationRequested")
    handled = record.model_copy(update={"handled_request": "now"})
    assert (
        machine.next_step(SPEC, handled, observed(NEW_FP, NEW_FP, requested="now"), T0).action is Action.WAIT
    )


def test_a_current_key_expiring_before_the_schedule_is_rotated_early() -> None:
    record = api.KeyRotationStatus(
        current_key_id="key-1", last_rotation=T0, current_key_expires=T0 + timedelta(minutes=20)
    )
    # expiry 20 min, minus grace (1 min) and half the slack (5 min): due at 14 min, not at 60.
    assert machine.due_at(SPEC, record) == T0 + timedelta(minutes=14)


@pytest.mark.parametrize("in_flight", ["pending", "retiring"])
def test_two_rotations_never_overlap(in_flight: str) -> None:
    record = promoted() if in_flight == "retiring" else minted()
    late = T0 + timedelta(days=30)
    step = machine.next_step(SPEC, record, observed(NEW_FP, OLD_FP, complete=False, requested="again"), late)
    assert step.action is not Action.MINT


def test_a_failed_call_is_retried_with_doubling_backoff_and_reported() -> None:
    step = machine.next_step(SPEC, None, observed(), T0)
    failed = machine.after_failure(None, step, "POST keys: HTTP 503", T0)
    assert (failed.failures, failed.reason, failed.retry_at) == (1, "KeyApiFailed", T0 + timedelta(seconds=1))
    assert failed.last_error == "mint failed: POST keys: HTTP 503"
    waiting = machine.next_step(SPEC, failed, observed(), T0 + timedelta(milliseconds=500))
    assert (waiting.action, waiting.until) == (Action.WAIT, failed.retry_at)
    again = machine.after_failure(failed, step, "POST keys: HTTP 503", T0)
    assert again.retry_at == T0 + timedelta(seconds=2)
    assert machine.backoff_s(30) == machine.BACKOFF_CAP_S
    recovered = machine.after_mint(again, step, "key-9", NEW_FP, None)
    assert (recovered.failures, recovered.retry_at, recovered.last_error) == (0, None, None)


def test_orphans_are_this_backends_keys_the_record_does_not_know() -> None:
    record = api.KeyRotationStatus(current_key_id="cur", retiring_key_id="old")
    listed = [
        ("cur", machine.comment_for("voice", "aura-en", T0)),
        ("old", machine.comment_for("voice", "aura-en", T0)),
        ("lost", machine.comment_for("voice", "aura-en", T0)),
        ("neighbour", machine.comment_for("voice", "aura-en-2", T0)),
        ("human", "made by hand"),
    ]
    assert machine.orphans(listed, record, "voice", "aura-en") == ["lost"]
