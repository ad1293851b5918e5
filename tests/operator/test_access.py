"""What the operator asks RBAC before watching, and how a refusal reads on a backend (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime

from ttsfleet.operator import access, kube

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def test_every_watched_resource_is_asked_about_for_list_and_watch_in_each_namespace() -> None:
    asked = {
        (r.resource.plural, r.verb, r.namespace) for r in access.needed(("voice", "staging"), peering=False)
    }
    assert ("deployments", "watch", "voice") in asked and ("secrets", "list", "staging") in asked
    assert len(asked) == 2 * 2 * len(access.WATCHED)
    assert not {plural for plural, _, _ in asked} & {"kopfpeerings"}


def test_peering_and_cluster_mode_are_asked_about_cluster_wide() -> None:
    asked = access.needed((), peering=True)
    assert {r.namespace for r in asked} == {None}
    assert ("kopfpeerings", "watch") in {(r.resource.plural, r.verb) for r in asked}
    review = access.review_of(asked[0])
    assert "namespace" not in review["spec"]["resourceAttributes"]


def test_a_refusal_names_verb_resource_group_and_namespace() -> None:
    refusal = access.Refusal(kube.DEPLOYMENTS, "watch", "voice")
    assert refusal.describe() == "watch on deployments.apps in namespace voice"
    assert access.review_of(refusal)["spec"]["resourceAttributes"] == {
        "group": "apps",
        "resource": "deployments",
        "verb": "watch",
        "namespace": "voice",
    }
    assert "watch on deployments.apps in namespace voice" in access.summary([refusal])


def test_degraded_keeps_other_conditions_and_the_transition_time_of_an_unchanged_status() -> None:
    since = "2026-01-01T00:00:00Z"
    previous = [
        {"type": kind, "status": "False", "reason": reason, "lastTransitionTime": since}
        for kind, reason in (("Ready", "Creating"), ("Degraded", "AsExpected"))
    ]
    previous.append({"type": "CredentialsValid", "status": "Unknown", "reason": "NotYetVerified"})
    conditions = {c["type"]: c for c in access.degraded_conditions(previous, "refused", 3, NOW)}
    assert conditions["CredentialsValid"] == previous[2]
    assert conditions["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # was False already
    assert conditions["Degraded"]["lastTransitionTime"] == "2026-12-02T08:00:00Z"  # flipped to True
    assert {c["reason"] for t, c in conditions.items() if t != "CredentialsValid"} == {"WatchForbidden"}
    assert conditions["Degraded"]["observedGeneration"] == 3


def test_the_warning_event_points_at_the_backend() -> None:
    backend = {
        "apiVersion": "ttsfleet.io/v1alpha1",
        "kind": "TTSBackend",
        "metadata": {"name": "aura", "namespace": "voice", "uid": "u-1"},
    }
    event = access.warning_event(backend, "refused", NOW)
    assert event["involvedObject"]["uid"] == "u-1" and event["type"] == "Warning"
    assert event["reason"] == "WatchForbidden" and event["metadata"]["namespace"] == "voice"
