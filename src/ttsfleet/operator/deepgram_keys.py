"""Deepgram's key-management API (`/v1/projects/{project_id}/keys`), the thin I/O edge of key rotation.

Every call authenticates with the admin key, which is held only for the call: it is never logged, and
errors carry the HTTP status and Deepgram's `err_code`, never a request header or a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

TIMEOUT_S = 10.0


class KeyApiError(Exception):
    """A management call failed; the message is safe to log and record (no key in it)."""


@dataclass(frozen=True, slots=True)
class MintedKey:
    """A key as created: its secret is shown once, here; keep it only until it is in the Secret."""

    api_key_id: str
    secret: str
    expiration: datetime | None

    def __repr__(self) -> str:  # never print the secret
        return f"MintedKey(api_key_id={self.api_key_id!r})"


def _time(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class DeepgramKeys:
    """One project's keys, managed with an admin key."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, project_id: str) -> None:
        self._client = client
        self._keys_url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/keys"

    async def _call(
        self, method: str, url: str, admin_key: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        try:
            response = await self._client.request(
                method, url, json=body, headers={"Authorization": f"Token {admin_key}"}, timeout=TIMEOUT_S
            )
        except httpx.HTTPError as error:
            raise KeyApiError(f"{method} keys: {type(error).__name__}") from None
        if response.status_code == 404 and method == "DELETE":
            return response
        if response.status_code >= 400:
            try:
                code = str(response.json().get("err_code") or "")
            except ValueError:
                code = ""
            raise KeyApiError(f"{method} keys: HTTP {response.status_code} {code}".rstrip())
        return response

    async def create(
        self, admin_key: str, comment: str, scopes: list[str], expiration: datetime
    ) -> MintedKey:
        """POST …/keys: a new key expiring at `expiration`."""
        body = {"comment": comment, "scopes": scopes, "expiration_date": expiration.isoformat()}
        answer = (await self._call("POST", self._keys_url, admin_key, body)).json()
        key_id, secret = answer.get("api_key_id"), answer.get("key")
        if not isinstance(key_id, str) or not isinstance(secret, str) or not secret:
            raise KeyApiError("POST keys: the answer has no api_key_id and key")
        return MintedKey(key_id, secret, _time(answer.get("expiration_date")))

    async def list(self, admin_key: str) -> list[tuple[str, str]]:
        """GET …/keys: (api_key_id, comment) of every key of the project."""
        answer = (await self._call("GET", self._keys_url, admin_key)).json()
        listed = []
        for item in answer.get("api_keys") or ():
            key = (item or {}).get("api_key") or {}
            if isinstance(key.get("api_key_id"), str):
                listed.append((key["api_key_id"], str(key.get("comment") or "")))
        return listed

    async def delete(self, admin_key: str, key_id: str) -> bool:
        """DELETE …/keys/{id}: True when deleted now, False when it was already gone."""
        response = await self._call("DELETE", f"{self._keys_url}/{quote(key_id, safe='')}", admin_key)
        return response.status_code != 404
