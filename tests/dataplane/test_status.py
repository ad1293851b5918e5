"""Readiness and the /statusz document of docs/contracts.md."""

from __future__ import annotations

import dataclasses

import pytest

from ttsfleet.dataplane.status import StatusFacts, is_ready, not_ready_reason, render_status

FACTS = StatusFacts(
    pod="pod-a",
    serving=True,
    draining=False,
    sessions_active=3,
    sessions_total=120,
    utterances_active=1,
    utterances_total=400,
    open_sockets=4,
    leased_sockets=1,
    breaker="closed",
    fingerprint="0123456789ab",
    credential_valid=True,
    credential_reloads=1,
    config_hash="0123456789abcdef",
    upstream_warmed=True,
)


def test_the_document_has_the_contracts_shape() -> None:
    assert render_status(FACTS) == {
        "pod": "pod-a",
        "ready": True,
        "draining": False,
        "sessions": {"active": 3, "total": 120},
        "utterances": {"active": 1, "total": 400},
        "upstream": {
            "open_sockets": 4,
            "connecting_sockets": 0,
            "leased_sockets": 1,
            "breaker": "closed",
            "opened": {"total": 0, "on_demand": 0},
            "lease_waits": 0,
            "handshake_ms": 0.0,
        },
        "credential": {"fingerprint": "0123456789ab", "valid": True, "reloads": 1},
        "config": {"hash": "0123456789abcdef"},
        "share": {"revision": None, "upstream_sockets": None, "chars_per_minute_per_token": None},
        "usage": {"boot": "", "billed_characters": 0},
    }


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"serving": False, "draining": True}, "draining", id="draining"),
        pytest.param({"serving": False}, "starting", id="starting"),
        pytest.param({"fingerprint": None}, "no Deepgram key loaded", id="no-key"),
        pytest.param({"credential_valid": False}, "Deepgram refused the key", id="refused-key"),
        pytest.param({"upstream_warmed": False}, "opening warm upstream sockets", id="warming"),
        pytest.param(
            {"share_required": True, "socket_share": 0},
            "waiting for a share of the fleet's upstream socket budget",
            id="no-socket-share",
        ),
    ],
)
def test_not_ready_while_starting_draining_or_without_a_usable_key(
    change: dict[str, object], reason: str
) -> None:
    facts = dataclasses.replace(FACTS, **change)  # type: ignore[arg-type]
    assert not is_ready(facts)
    assert not_ready_reason(facts) == reason


def test_an_untried_key_is_ready() -> None:
    assert is_ready(dataclasses.replace(FACTS, credential_valid=None))
