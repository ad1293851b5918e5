"""In-memory API keys: who may speak, and the key-management API's store.

Keys created through `POST /v1/projects/{id}/keys` are accepted until deleted or expired; a deleted
key is refused (401) for every new socket at once. With no configured keys the emulator is in open
mode: any non-empty key is accepted except one that was deleted.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ttsfleet.fingerprints import fingerprint_secret


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

    def describe(self) -> dict[str, Any]:
        """The key as listed: everything but the secret."""
        described: dict[str, Any] = {
            "api_key_id": self.api_key_id,
            "comment": self.comment,
            "scopes": self.scopes,
            "tags": self.tags,
            "created": self.created.isoformat().replace("+00:00", "Z"),
        }
        if self.expiration_date is not None:
            described["expiration_date"] = self.expiration_date.isoformat().replace("+00:00", "Z")
        return described


@dataclass(slots=True)
class KeyStore:
    configured: frozenset[str]
    created: dict[str, ApiKey] = field(default_factory=dict)  # by api_key_id
    revoked_fingerprints: set[str] = field(default_factory=set)

    @property
    def is_open(self) -> bool:
        return not self.configured

    def is_accepted(self, secret: str, now: datetime) -> bool:
        """Whether `secret` may open a socket or make a request now."""
        if not secret:
            return False
        if fingerprint_secret(secret) in self.revoked_fingerprints:
            return False
        for key in self.created.values():
            if secrets.compare_digest(key.secret, secret):
                return not key.is_expired(now)
        if self.is_open:
            return True
        return any(secrets.compare_digest(known, secret) for known in self.configured)

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

    def list(self, project_id: str) -> list[ApiKey]:
        return [key for key in self.created.values() if key.project_id == project_id]

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
