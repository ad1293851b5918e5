"""Fleet tokens: read from a mounted file, kept only as SHA-256 digests, compared in constant time.

The file holds one token per line (blank lines and `#` comments ignored). A token's id for limits and
logs is its fingerprint, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from ttsfleet.fingerprints import fingerprint_secret
from ttsfleet.protocol import read_credential


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.strip().encode()).digest()


def parse_tokens(content: str) -> frozenset[bytes]:
    """Digests of the tokens in a tokens file's content."""
    lines = (line.strip() for line in content.splitlines())
    return frozenset(_digest(line) for line in lines if line and not line.startswith("#"))


class TokenStore:
    """The accepted fleet tokens; `reload` picks up a changed file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._content: str | None = None
        self._digests: frozenset[bytes] = frozenset()
        self.reloads = 0

    @property
    def count(self) -> int:
        return len(self._digests)

    def reload(self) -> bool:
        """Re-read the file (blocking: call through a thread); True when the tokens changed."""
        try:
            content = self._path.read_text()
        except OSError:
            return False  # keep the last good set: a Secret update swaps files, briefly absent
        if content == self._content:
            return False
        changed = self._content is not None
        self._content = content
        self._digests = parse_tokens(content)
        self.reloads += int(changed)
        return True

    def identify(self, token: str) -> str | None:
        """The token's id (its fingerprint) when it is accepted, else None; constant time per digest."""
        candidate = _digest(token)
        accepted = False
        for digest in self._digests:
            accepted |= hmac.compare_digest(candidate, digest)
        return fingerprint_secret(token) if accepted else None


class AuthOutcome:
    """Who a request is: `token_id` (None with auth off), and whether to select the `token` subprotocol."""

    __slots__ = ("select_subprotocol", "token_id")

    def __init__(self, token_id: str | None, select_subprotocol: bool) -> None:
        self.token_id = token_id
        self.select_subprotocol = select_subprotocol


def authenticate(
    store: TokenStore | None, authorization: str | None, subprotocols: list[str] | None
) -> AuthOutcome | None:
    """The caller's identity from the protocol's credential forms, or None when refused."""
    credential = read_credential(authorization, subprotocols)
    if store is None:
        return AuthOutcome(None, credential is not None and credential.via_subprotocol)
    if credential is None:
        return None
    token_id = store.identify(credential.secret)
    if token_id is None:
        return None
    return AuthOutcome(token_id, credential.via_subprotocol)
