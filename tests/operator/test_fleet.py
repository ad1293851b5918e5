"""Pods' /statusz reports: parsing, fleet totals, and how far a key has reached."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ttsfleet.contracts import BreakerState
from ttsfleet.operator import api, fleet

StatuszOf = Callable[..., dict[str, Any]]


def test_the_contract_example_parses(statusz_of: StatuszOf) -> None:
    report = fleet.parse_statusz(statusz_of(breaker="half_open"))
    assert report is not None
    assert report.upstream.breaker is BreakerState.HALF_OPEN
    assert report.credential.fingerprint == "0123456789ab"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"sessions": {"active": -1}}, id="negative"),
        pytest.param({"upstream": {"breaker": "melted"}}, id="unknown-breaker"),
        pytest.param({"ready": "perhaps"}, id="wrong-type"),
    ],
)
def test_off_contract_reports_are_not_trusted(body: dict[str, Any]) -> None:
    assert fleet.parse_statusz(body) is None


def test_newer_gateways_with_extra_fields_still_parse() -> None:
    report = fleet.parse_statusz({"pod": "p", "future": {"x": 1}})
    assert report is not None
    assert report.sessions.active == 0


def test_fleet_totals(statusz_of: StatuszOf) -> None:
    reports = [
        statusz_of("a", active_sessions=3, config_hash="new"),
        statusz_of("b", active_sessions=4, breaker="open", draining=True, ready=False, config_hash="old"),
        statusz_of("c", breaker="half_open", config_hash="new"),
        {"sessions": "lots"},
    ]
    assert fleet.aggregate_fleet(reports, config_hash="new") == api.FleetFigures(
        pods_probed=4,
        pods_unreadable=1,
        pods_ready=2,
        pods_draining=1,
        pods_on_current_config=2,
        active_sessions=7,
        active_utterances=3,
        upstream_sockets=6,
        leased_sockets=3,
        breakers_open=1,
        breakers_half_open=1,
    )


def test_no_config_hash_means_no_pod_is_current(statusz_of: StatuszOf) -> None:
    assert fleet.aggregate_fleet([statusz_of()]).pods_on_current_config == 0


def test_an_empty_fleet_is_all_zeros() -> None:
    assert fleet.aggregate_fleet([]) == api.FleetFigures()


def test_rollout_complete_when_every_pod_has_the_key(statusz_of: StatuszOf) -> None:
    rollout = fleet.credential_rollout("0123456789ab", [statusz_of("a"), statusz_of("b")])
    assert rollout == api.CredentialRollout(
        current_fingerprint="0123456789ab", pods=2, pods_on_current=2, stale_fingerprints=[], complete=True
    )


def test_rollout_lists_old_keys_still_in_use(statusz_of: StatuszOf) -> None:
    reports = [
        statusz_of("a", fingerprint="new"),
        statusz_of("b", fingerprint="old-2"),
        statusz_of("c", fingerprint="old-1"),
        statusz_of("d", fingerprint=None),
        statusz_of("e", fingerprint="gone", draining=True),
    ]
    rollout = fleet.credential_rollout("new", reports)
    assert (rollout.pods, rollout.pods_on_current, rollout.complete) == (4, 1, False)
    assert rollout.stale_fingerprints == ["old-1", "old-2"]


def test_rollout_without_a_key_or_pods(statusz_of: StatuszOf) -> None:
    assert fleet.credential_rollout(None, [statusz_of()]).pods_on_current == 0
    assert fleet.credential_rollout("new", []).complete is False
