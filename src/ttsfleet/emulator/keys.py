"""In-memory API keys: who may speak or manage keys, and the key-management API's store.

Keys created through `POST /v1/projects/{id}/keys` carry scopes: a key speaks when it has a usage
scope (`usage:write`, or a role scope `member`/`admin`/`owner`) and manages keys when it has
`keys:write` (or `admin`/`owner`); `keys:read` lists and shows. Keys given on the command line are
owners. A created key is accepted until deleted or expired; a deleted or expired key is refused (401)
at the next handshake or request. With no configured keys the emulator is in open mode: any non-empty
key may do anything except one that was deleted or created and expired.
"""

from __future__ import annotations

import enum
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ttsfleet.fingerprints import fingerprint_secret

# The emulator's single project member; keys list their creator as this member.
MEMBER_ID = "emulator-member"
MEMBER_EMAIL = "member@emulator.invalid"


class Need(enum.Enum):
    """What a request wants to do, and the scopes any one of which allows it."""

    SPEAK = frozenset({"usage:write", "member", "admin", "owner"})
    READ_KEYS = frozenset({"keys:read", "keys:write", "admin", "owner"})
    WRITE_KEYS = frozenset({"keys:write", "admin", "owner"})


class Access(enum.Enum):
    """A key's answer to a Need: granted, unknown (401) or lacking the scope (403)."""

    GRANTED = "granted"
    UNKNOWN = "unknown"
    FORBIDDEN = "forbidden"


class KeyStatus(enum.StrEnum):
    """The `status` filter of the list endpoint."""

    ACTIVE = "active"
    EXPIRED = "expired"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class ApiKey:
    api_key_id: str
    project_id: str
    secret: str
    comment: str
    scopes: list[str]
    tags: list[str]
    created: datetime
    expiration_date: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expiration_date is not None and now >= self.expiration_date

    def status(self, now: datetime) -> KeyStatus:
        return KeyStatus.EXPIRED if self.is_expired(now) else KeyStatus.ACTIVE

    def describe(self) -> dict[str, Any]:
        """The key as listed and shown: everything but the secret."""
        described: dict[str, Any] = {
            "api_key_id": self.api_key_id,
            "comment": self.comment,
            "scopes": self.scopes,
            "tags": self.tags,
            "created": format_time(self.created),
        }
        if self.expiration_date is not None:
            described["expiration_date"] = format_time(self.expiration_date)
        return described

    def created_body(self) -> dict[str, Any]:
        """The create answer (CreateKeyV1Response): the only time the secret is shown."""
        body = {key: value for key, value in self.describe().items() if key != "created"}
        return {**body, "key": self.secret}


def member() -> dict[str, str]:
    return {"member_id": MEMBER_ID, "email": MEMBER_EMAIL}


@dataclass(slots=True)
class KeyStore:
    configured: frozenset[str]
    created: dict[str, ApiKey] = field(default_factory=dict)  # by api_key_id
    revoked_fingerprints: set[str] = field(default_factory=set)

    @property
    def is_open(self) -> bool:
        return not self.configured

    def check(self, secret: str, now: datetime, need: Need) -> Access:
        """Whether `secret` may do `need` now."""
        if not secret or fingerprint_secret(secret) in self.revoked_fingerprints:
            return Access.UNKNOWN
        for key in self.created.values():
            if secrets.compare_digest(key.secret, secret):
                if key.is_expired(now):
                    return Access.UNKNOWN
                return Access.GRANTED if need.value & set(key.scopes) else Access.FORBIDDEN
        if self.is_open or any(secrets.compare_digest(known, secret) for known in self.configured):
            return Access.GRANTED
        return Access.UNKNOWN

    def is_accepted(self, secret: str, now: datetime) -> bool:
        """Whether `secret` may open a socket or make a speak request now."""
        return self.check(secret, now, Need.SPEAK) is Access.GRANTED

    def create(
        self,
        project_id: str,
        comment: str,
        scopes: list[str],
        tags: list[str],
        now: datetime,
        ttl_s: float | None = None,
        expiration_date: datetime | None = None,
    ) -> ApiKey:
        if ttl_s is not None:
            expiration_date = now + timedelta(seconds=ttl_s)
        key = ApiKey(
            api_key_id=str(uuid.uuid4()),
            project_id=project_id,
            secret=secrets.token_hex(20),
            comment=comment,
            scopes=scopes,
            tags=tags,
            created=now,
            expiration_date=expiration_date,
        )
        self.created[key.api_key_id] = key
        return key

    def list(self, project_id: str, now: datetime, status: KeyStatus | None = None) -> list[ApiKey]:
        return [
            key
            for key in self.created.values()
            if key.project_id == project_id and (status is None or key.status(now) is status)
        ]

    def get(self, project_id: str, api_key_id: str) -> ApiKey | None:
        key = self.created.get(api_key_id)
        return key if key is not None and key.project_id == project_id else None

    def delete(self, project_id: str, api_key_id: str) -> bool:
        key = self.get(project_id, api_key_id)
        if key is None:
            return False
        del self.created[api_key_id]
        self.revoked_fingerprints.add(fingerprint_secret(key.secret))
        return True

    def reset(self) -> None:
        self.created.clear()
        self.revoked_fingerprints.clear()


def parse_expiration(raw: object) -> datetime | None:
    """An ISO-8601 expiration date from a request body, or None."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError("expiration_date must be an ISO-8601 string")
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
