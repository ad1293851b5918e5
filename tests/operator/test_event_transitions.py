"""Events are posted when a watched reason appears, never again while it persists (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ttsfleet.operator import api, events

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
Reason = events.Reason
DEGRADED, CREDENTIALS = api.ConditionType.DEGRADED, api.ConditionType.CREDENTIALS_VALID


def state(
    *conditions: tuple[api.ConditionType, str, str],
    current: str | None = None,
    stale: tuple[str, ...] = (),
    complete: bool = False,
) -> api.TTSBackendStatus:
    """A status with (type, status, reason) conditions and an optional credential rollout."""
    credentials = (
        api.CredentialRollout(current_fingerprint=current, stale_fingerprints=list(stale), complete=complete)
        if current is not None
        else None
    )
    return api.TTSBackendStatus(
        conditions=[
            api.Condition(
                type=kind,
                status=api.ConditionStatus(value),
                reason=reason,
                message=f"{reason} details",
                last_transition_time=NOW,
            )
            for kind, value, reason in conditions
        ],
        credentials=credentials,
    )


HEALTHY = state((DEGRADED, "False", "AsExpected"), (CREDENTIALS, "True", "KeyInUse"))


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        pytest.param((DEGRADED, "True", "InvalidSpec"), Reason.INVALID_SPEC, id="invalid spec"),
        pytest.param(
            (DEGRADED, "True", "ProgressDeadlineExceeded"),
            Reason.PROGRESS_DEADLINE_EXCEEDED,
            id="rollout stuck",
        ),
        pytest.param(
            (CREDENTIALS, "False", "UpstreamAuthFailed"), Reason.UPSTREAM_AUTH_FAILED, id="key refused"
        ),
    ],
)
def test_a_watched_reason_appearing_posts_one_warning(
    condition: tuple[api.ConditionType, str, str], reason: events.Reason
) -> None:
    notices = events.transitions(HEALTHY, state(condition))
    assert notices == [events.Notice(events.EventType.WARNING, reason, f"{condition[2]} details")]


def test_a_watched_reason_on_the_first_status_is_news() -> None:
    notices = events.transitions(None, state((DEGRADED, "True", "InvalidSpec")))
    assert [n.reason for n in notices] == [Reason.INVALID_SPEC]


def test_a_persisting_reason_posts_nothing_more() -> None:
    broken = state((CREDENTIALS, "False", "UpstreamAuthFailed"))
    assert events.transitions(broken, broken) == []


def test_a_reason_moving_to_another_watched_reason_posts_the_new_one() -> None:
    invalid = state((DEGRADED, "True", "InvalidSpec"))
    stuck = state((DEGRADED, "True", "ProgressDeadlineExceeded"))
    assert [n.reason for n in events.transitions(invalid, stuck)] == [Reason.PROGRESS_DEADLINE_EXCEEDED]


def test_recovery_and_unwatched_reasons_post_nothing() -> None:
    broken = state((CREDENTIALS, "False", "UpstreamAuthFailed"))
    assert events.transitions(broken, HEALTHY) == []
    assert events.transitions(HEALTHY, state((DEGRADED, "True", "PodsUnreachable"))) == []
    assert events.transitions(None, state()) == []


def test_rotation_complete_is_posted_once_when_the_last_stale_key_goes() -> None:
    rotating = state(current="new", stale=("old",))
    done = state(current="new", complete=True)
    notices = events.transitions(rotating, done)
    assert [(n.type, n.reason) for n in notices] == [
        (events.EventType.NORMAL, Reason.CREDENTIAL_ROTATION_COMPLETE)
    ]
    assert "new" in notices[0].message and "old" in notices[0].message
    assert events.transitions(done, done) == []


def test_rotation_not_yet_complete_or_never_started_posts_nothing() -> None:
    rotating = state(current="new", stale=("old",))
    assert events.transitions(rotating, rotating) == []
    assert events.transitions(state(current="k", complete=True), state(current="k", complete=True)) == []
    assert events.transitions(None, state(current="k", complete=True)) == []
