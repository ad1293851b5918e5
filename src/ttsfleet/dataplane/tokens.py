"""Fleet tokens: read from a mounted file, kept only as SHA-256 digests, looked up by digest.

The file holds one token per line (blank lines and `#` comments ignored; a UTF-8 byte-order mark, as
some editors write, is not part of the first token). A token's id for limits and logs is its
fingerprint, never the token; the store knows the ids of the tokens it holds, so sessions opened with
a token that left the file can be found and closed.

A presented token is hashed and its digest looked up in a dict. The lookup's timing depends on the
digest, which an attacker cannot steer towards a stored one without a SHA-256 preimage, so it leaks
nothing about the tokens; and it costs the same with 2,000 tokens as with one, where comparing the
digest with each stored digest in turn cost every upgrade a walk over the whole file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from ttsfleet.fingerprints import fingerprint_secret
from ttsfleet.protocol import read_credential


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.strip().encode()).digest()


def read_tokens(content: str) -> list[str]:
    """The tokens in a tokens file's content."""
    lines = (line.strip() for line in content.removeprefix("\ufeff").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class TokenStore:
    """The accepted fleet tokens; `reload` picks up a changed file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._content: str | None = None
        self._ids_by_digest: dict[bytes, str] = {}
        self._ids: frozenset[str] = frozenset()
        self.reloads = 0

    @property
    def count(self) -> int:
        return len(self._ids_by_digest)

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
        tokens = read_tokens(content)
        self._ids_by_digest = {_digest(token): fingerprint_secret(token) for token in tokens}
        self._ids = frozenset(self._ids_by_digest.values())
        self.reloads += int(changed)
        return True

    def holds(self, token_id: str) -> bool:
        """Whether the token with this id (its fingerprint) is still in the file."""
        return token_id in self._ids

    def identify(self, token: str) -> str | None:
        """The token's id (its fingerprint) when it is accepted, else None."""
        return self._ids_by_digest.get(_digest(token))


class AuthOutcome:
    """Who a request is: `token_id` (None with auth off), and the subprotocol to select (as offered)."""

    __slots__ = ("subprotocol", "token_id")

    def __init__(self, token_id: str | None, subprotocol: str | None) -> None:
        self.token_id = token_id
        self.subprotocol = subprotocol


def authenticate(
    store: TokenStore | None, authorization: str | None, subprotocols: list[str] | None
) -> AuthOutcome | None:
    """The caller's identity from the protocol's credential forms, or None when refused."""
    credential = read_credential(authorization, subprotocols)
    if store is None:
        return AuthOutcome(None, credential.subprotocol if credential is not None else None)
    if credential is None:
        return None
    token_id = store.identify(credential.secret)
    if token_id is None:
        return None
    return AuthOutcome(token_id, credential.subprotocol)


class Revocations:
    """Who to tell when a token leaves the tokens file: the sessions opened with it, by token id."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Callable[[], None]]] = {}

    def watch(self, token_id: str, on_revoked: Callable[[], None]) -> Callable[[], None]:
        """Call `on_revoked` when the token `token_id` is gone; returns the function that stops watching."""
        watchers = self._watchers.setdefault(token_id, set())
        watchers.add(on_revoked)

        def unwatch() -> None:
            watchers.discard(on_revoked)
            if not watchers and self._watchers.get(token_id) is watchers:
                del self._watchers[token_id]

        return unwatch

    def tokens_changed(self, store: TokenStore) -> int:
        """Tell the watchers of every token `store` no longer holds; the number of watchers told."""
        told = 0
        for token_id, watchers in list(self._watchers.items()):
            if not store.holds(token_id):
                for on_revoked in list(watchers):
                    on_revoked()
                    told += 1
        return told
