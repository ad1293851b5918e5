"""What the gateway pods say about themselves: `/statusz` reports (docs/contracts.md) and their totals.

Reports are parsed leniently (unknown fields ignored, missing ones defaulted) so a newer gateway does
not break an older operator; a report that is not the contract's shape is counted, not trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from ttsfleet.contracts import BreakerState
from ttsfleet.operator import api


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Counter(_Part):
    """A gauge and its running total."""

    active: int = Field(default=0, ge=0)
    total: int = Field(default=0, ge=0)


class UpstreamReport(_Part):
    """A pod's upstream sockets and breaker."""

    open_sockets: int = Field(default=0, ge=0)
    connecting_sockets: int = Field(default=0, ge=0)
    leased_sockets: int = Field(default=0, ge=0)
    breaker: BreakerState = BreakerState.CLOSED


class CredentialReport(_Part):
    """Which key a pod holds and whether Deepgram accepted it (None: not tried yet)."""

    fingerprint: str | None = None
    valid: bool | None = None
    reloads: int = Field(default=0, ge=0)


class ConfigReport(_Part):
    """The hash of the settings file a pod runs."""

    hash: str | None = None


class ShareReport(_Part):
    """The division (shares file revision) a pod last read and the limits it applies (None: none)."""

    revision: int | None = None
    upstream_sockets: int | None = Field(default=None, ge=0)
    chars_per_minute_per_token: int | None = Field(default=None, ge=0)


class UsageReport(_Part):
    """Characters a pod's process synthesized upstream since it started (`boot` names the start)."""

    boot: str = ""
    billed_characters: int = Field(default=0, ge=0)


class PodReport(_Part):
    """One pod's `GET /statusz` answer."""

    pod: str = ""
    ready: bool = False
    draining: bool = False
    sessions: Counter = Field(default_factory=Counter)
    utterances: Counter = Field(default_factory=Counter)
    upstream: UpstreamReport = Field(default_factory=UpstreamReport)
    credential: CredentialReport = Field(default_factory=CredentialReport)
    config: ConfigReport = Field(default_factory=ConfigReport)
    share: ShareReport = Field(default_factory=ShareReport)
    usage: UsageReport = Field(default_factory=UsageReport)


def parse_statusz(raw: Mapping[str, Any]) -> PodReport | None:
    """A report from parsed `/statusz` JSON, or None when it is not the contract's shape."""
    try:
        return PodReport.model_validate(raw)
    except pydantic.ValidationError:
        return None


def readable_reports(statusz_list: Sequence[Mapping[str, Any]]) -> list[PodReport]:
    """The reports that parse, in order."""
    return [report for report in map(parse_statusz, statusz_list) if report is not None]


def aggregate_fleet(
    statusz_list: Sequence[Mapping[str, Any]], config_hash: str | None = None
) -> api.FleetFigures:
    """Fleet totals from the pods' reports; `config_hash` is the hash pods should run."""
    reports = readable_reports(statusz_list)
    return api.FleetFigures(
        pods_probed=len(statusz_list),
        pods_unreadable=len(statusz_list) - len(reports),
        pods_ready=sum(report.ready for report in reports),
        pods_draining=sum(report.draining for report in reports),
        pods_on_current_config=sum(
            config_hash is not None and report.config.hash == config_hash for report in reports
        ),
        active_sessions=sum(report.sessions.active for report in reports),
        active_utterances=sum(report.utterances.active for report in reports),
        upstream_sockets=sum(report.upstream.open_sockets for report in reports),
        leased_sockets=sum(report.upstream.leased_sockets for report in reports),
        breakers_open=sum(report.upstream.breaker is BreakerState.OPEN for report in reports),
        breakers_half_open=sum(report.upstream.breaker is BreakerState.HALF_OPEN for report in reports),
    )


def credential_rollout(
    key_fingerprint: str | None, statusz_list: Sequence[Mapping[str, Any]]
) -> api.CredentialRollout:
    """How far the Secret's key (by fingerprint) has reached the pods; draining pods are left out."""
    reports = [report for report in readable_reports(statusz_list) if not report.draining]
    on_current = sum(
        key_fingerprint is not None and report.credential.fingerprint == key_fingerprint for report in reports
    )
    stale = sorted(
        {
            report.credential.fingerprint
            for report in reports
            if report.credential.fingerprint is not None and report.credential.fingerprint != key_fingerprint
        }
    )
    return api.CredentialRollout(
        current_fingerprint=key_fingerprint,
        pods=len(reports),
        pods_on_current=on_current,
        stale_fingerprints=stale,
        complete=bool(reports) and on_current == len(reports),
    )
