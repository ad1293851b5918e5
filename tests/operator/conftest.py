"""Factories for operator tests: raw specs as users write them, backends as the API returns them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from ttsfleet.operator import api
from ttsfleet.operator.rendering import OwnerRef

MINIMAL_SPEC: dict[str, Any] = {
    "image": "ghcr.io/ttsfleet/ttsfleet:0.1.0",
    "deepgram": {"apiKeySecretRef": {"name": "deepgram"}},
    "auth": {"clientTokensSecretRef": {"name": "fleet-tokens"}},
}


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep merge: nested dicts merge, anything else replaces; a None value removes the key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _raw_spec(**overrides: Any) -> dict[str, Any]:
    return _merged(MINIMAL_SPEC, overrides)


def _make_backend(
    spec: dict[str, Any] | None = None, *, name: str = "aura-en", namespace: str = "voice"
) -> api.TTSBackend:
    """A backend as read from the API (with a uid and generation)."""
    return api.TTSBackend.from_body(
        {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "metadata": {"name": name, "namespace": namespace, "uid": "uid-1234", "generation": 3},
            "spec": spec if spec is not None else _raw_spec(),
        }
    )


@pytest.fixture
def spec_of() -> Callable[..., dict[str, Any]]:
    """Build a raw spec: the minimal valid one with camelCase overrides deep-merged (None removes)."""
    return _raw_spec


@pytest.fixture
def backend_of() -> Callable[..., api.TTSBackend]:
    """Build a backend (as read from the API) from spec overrides."""

    def build(**overrides: Any) -> api.TTSBackend:
        return _make_backend(_raw_spec(**overrides))

    return build


@pytest.fixture
def owner() -> OwnerRef:
    return OwnerRef(name="aura-en", uid="uid-1234")


def _statusz(
    pod: str = "aura-en-abc",
    *,
    fingerprint: str | None = "0123456789ab",
    valid: bool | None = True,
    config_hash: str = "cfg",
    active_sessions: int = 0,
    breaker: str = "closed",
    draining: bool = False,
    ready: bool = True,
) -> dict[str, Any]:
    """A `/statusz` body shaped as docs/contracts.md shows."""
    return {
        "pod": pod,
        "ready": ready,
        "draining": draining,
        "sessions": {"active": active_sessions, "total": 10},
        "utterances": {"active": 1, "total": 40},
        "upstream": {"open_sockets": 2, "leased_sockets": 1, "breaker": breaker},
        "credential": {"fingerprint": fingerprint, "valid": valid, "reloads": 0},
        "config": {"hash": config_hash},
    }


@pytest.fixture
def statusz_of() -> Callable[..., dict[str, Any]]:
    """Build a `/statusz` body shaped as docs/contracts.md shows."""
    return _statusz
