"""Readiness and the `/statusz` document (docs/contracts.md), computed from plain facts.

Pure: the gateway gathers `StatusFacts`; these functions decide and shape. The operator reads the
document exactly as written here, so its keys change only together with the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StatusFacts:
    """What the gateway knows about itself at one moment."""

    pod: str
    serving: bool  # started and not draining
    draining: bool
    sessions_active: int
    sessions_total: int
    utterances_active: int
    utterances_total: int
    open_sockets: int
    leased_sockets: int
    breaker: str
    fingerprint: str | None
    credential_valid: bool | None
    credential_reloads: int
    config_hash: str | None
    upstream_warmed: bool  # the default key's warm minimum opened, or upstream is known unreachable
    credential_problem: str | None = None  # why the key file holds no usable key
    connecting_sockets: int = 0
    share_required: bool = False  # a fleet socket budget is set: no share, no service
    share_revision: int | None = None  # the division last read from the shares file; None: none yet
    socket_share: int | None = None  # upstream sockets this pod may hold; None: no fleet budget
    chars_share: int | None = None  # characters per minute per token on this pod
    boot_id: str = ""  # changes with every process start, so counters that restart are recognised
    billed_characters: int = 0  # characters synthesized upstream since this process started
    sockets_opened: int = 0  # upstream handshakes since this process started
    sockets_opened_on_demand: int = 0  # of which an utterance waited for (no idle socket fitted)
    lease_waits: int = 0  # utterances that waited for a socket, whoever's handshake it was
    handshake_ms: float = 0.0  # the upstream handshake time the spares cover (the slowest recent one)


def is_ready(facts: StatusFacts) -> bool:
    """Ready means it can take a new session at full speed: serving, holding a key, the key not refused,
    and the default key's warm minimum open (unless upstream is known unreachable: then waiting for it
    would keep the pod out of service for nothing, and the REST fallback still answers)."""
    return not_ready_reason(facts) is None


def not_ready_reason(facts: StatusFacts) -> str | None:
    """Why the gateway is not ready, for /readyz and the logs; None when it is."""
    if facts.draining:
        return "draining"
    if not facts.serving:
        return "starting"
    if facts.fingerprint is None:
        problem = facts.credential_problem
        return f"no Deepgram key loaded: {problem}" if problem else "no Deepgram key loaded"
    if facts.credential_valid is False:
        return "Deepgram refused the key"
    if facts.share_required and not facts.socket_share:
        return "waiting for a share of the fleet's upstream socket budget"
    if not facts.upstream_warmed:
        return "opening warm upstream sockets"
    return None


def render_status(facts: StatusFacts) -> dict[str, Any]:
    """The `/statusz` JSON document."""
    return {
        "pod": facts.pod,
        "ready": is_ready(facts),
        "draining": facts.draining,
        "sessions": {"active": facts.sessions_active, "total": facts.sessions_total},
        "utterances": {"active": facts.utterances_active, "total": facts.utterances_total},
        "upstream": {
            "open_sockets": facts.open_sockets,
            "connecting_sockets": facts.connecting_sockets,
            "leased_sockets": facts.leased_sockets,
            "breaker": facts.breaker,
            "opened": {"total": facts.sockets_opened, "on_demand": facts.sockets_opened_on_demand},
            "lease_waits": facts.lease_waits,
            "handshake_ms": round(facts.handshake_ms, 1),
        },
        "credential": {
            "fingerprint": facts.fingerprint,
            "valid": facts.credential_valid,
            "reloads": facts.credential_reloads,
        },
        "config": {"hash": facts.config_hash},
        "share": {
            "revision": facts.share_revision,
            "upstream_sockets": facts.socket_share,
            "chars_per_minute_per_token": facts.chars_share,
        },
        "usage": {"boot": facts.boot_id, "billed_characters": facts.billed_characters},
    }
