"""Scheduled Deepgram key rotation through Deepgram's key-management API: the spec and status parts.

The operator mints a key with `adminKeySecretRef` (a key with the `keys:write` scope only, read by
the operator and never mounted into gateway pods), installs it in `deepgram.apiKeySecretRef`, waits
until every pod serves with it, and deletes the previous key after `gracePeriodSeconds`.
"""

from __future__ import annotations

import enum

from pydantic import Field

from ttsfleet.operator.api.base import ApiModel
from ttsfleet.operator.api.times import Timestamp
from ttsfleet.operator.api.upstream import SECRET_KEY_PATTERN, SecretKeyRef

# The annotation that asks for a rotation now: any new value (a timestamp, a ticket) starts one.
ROTATE_ANNOTATION = "ttsfleet.io/rotate-key"
DAY_S = 24 * 3600


class AdminKeySecretRef(SecretKeyRef):
    """A key inside a Secret holding the Deepgram key-management key."""

    key: str = Field(
        default="admin-key",
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="Key inside the Secret's data.",
    )


class KeyManagementSpec(ApiModel):
    """Let the operator mint, install and delete the Deepgram key on a schedule."""

    admin_key_secret_ref: AdminKeySecretRef = Field(
        description=(
            "The Secret key holding a Deepgram key with the keys:write scope only; read by the operator, "
            "never mounted into gateway pods. Keep it out of the apiKeySecretRef Secret."
        )
    )
    project_id: str = Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$", description="The Deepgram project id."
    )
    management_url: str = Field(
        default="https://api.deepgram.com",
        max_length=2048,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="Base URL of Deepgram's management API (http:// only for in-cluster emulators).",
    )
    interval_seconds: int = Field(
        default=30 * DAY_S, ge=1, le=365 * DAY_S, description="Time between scheduled rotations."
    )
    grace_period_seconds: int = Field(
        default=300,
        ge=0,
        le=7 * DAY_S,
        description="How long the previous key is kept after every pod serves with the new one.",
    )
    expiry_slack_seconds: int = Field(
        default=DAY_S,
        ge=0,
        le=30 * DAY_S,
        description=(
            "A minted key expires this long after its successor is due (interval + grace + slack), so a "
            "key outlives a late rotation but not a forgotten one."
        ),
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["usage:write"],
        min_length=1,
        max_length=16,
        description="Scopes of the minted keys (speaking needs usage:write).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class KeyRotationPhase(enum.StrEnum):
    """Where a rotation stands."""

    IDLE = "Idle"  # the current key serves; the next rotation is scheduled
    MINTED = "Minted"  # a new key exists at Deepgram, its id recorded, not yet in the Secret
    INSTALLED = "Installed"  # the new key is in the Secret; waiting for every pod to serve with it
    GRACE = "Grace"  # every pod serves with the new key; the previous key is deleted after the grace period


class KeyRotationStatus(ApiModel):
    """The operator's record of key rotation: key ids and times only, never a key."""

    phase: KeyRotationPhase = Field(
        default=KeyRotationPhase.IDLE, description="Idle, Minted, Installed or Grace."
    )
    current_key_id: str | None = Field(
        default=None, description="Deepgram id of the key the pods serve with."
    )
    current_key_expires: Timestamp | None = Field(default=None, description="When the current key expires.")
    pending_key_id: str | None = Field(
        default=None,
        description="Id of the key being rolled out (recorded before it is written to the Secret).",
    )
    pending_fingerprint: str | None = Field(default=None, description="Fingerprint of the pending key.")
    pending_key_expires: Timestamp | None = Field(default=None, description="When the pending key expires.")
    retiring_key_id: str | None = Field(
        default=None, description="Id of the previous key, deleted after grace."
    )
    grace_ends: Timestamp | None = Field(default=None, description="When the previous key is deleted.")
    last_rotation: Timestamp | None = Field(default=None, description="When the last rotation completed.")
    next_rotation: Timestamp | None = Field(
        default=None, description="When the next scheduled rotation starts."
    )
    rotations: int = Field(default=0, ge=0, description="Rotations completed.")
    handled_request: str | None = Field(
        default=None, description="The last value of the ttsfleet.io/rotate-key annotation acted on."
    )
    failures: int = Field(default=0, ge=0, description="Failed management API calls in a row.")
    retry_at: Timestamp | None = Field(default=None, description="When a failed step is tried again.")
    last_error: str | None = Field(
        default=None, max_length=1024, description="The last failure (no key in it)."
    )
    reason: str = Field(default="", max_length=128, description="CamelCase reason of the last step.")
    message: str = Field(default="", max_length=4096, description="What the last step did.")
