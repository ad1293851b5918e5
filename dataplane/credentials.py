"""The Deepgram key: read from a mounted file, re-read on change, judged by what Deepgram answers.

`KeyFile` is the one `CredentialSource`. Its generation goes up with every new key, so the pool can
retire sockets opened with an older one; `valid` is None until Deepgram accepted or refused the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog

from ttsfleet.fingerprints import fingerprint_secret

log = structlog.get_logger(__name__)


class KeyFile:
    """The current key from `path`; `poll` keeps it current."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._key: str | None = None
        self._generation = 0
        self.valid: bool | None = None
        self.reloads = 0
        self._listeners: list[Callable[[], None]] = []

    @property
    def key(self) -> str | None:
        return self._key

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def fingerprint(self) -> str | None:
        return fingerprint_secret(self._key) if self._key else None

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every change of key."""
        self._listeners.append(listener)

    def report(self, accepted: bool) -> None:
        """What Deepgram said about the current key (a refused upgrade, or a socket that opened)."""
        if self.valid is not accepted:
            log.info("credential judged", fingerprint=self.fingerprint, valid=accepted)
        self.valid = accepted

    def load(self) -> bool:
        """Read the file (blocking, listeners not called); True when the key changed.

        A missing file keeps the last key: a Secret update swaps a symlink and the file is briefly absent.
        """
        try:
            key = self._path.read_text().strip() or None
        except OSError:
            if self._key is None:
                return False
            key = self._key
        if key == self._key:
            return False
        first = self._key is None and self._generation == 0
        self._key = key
        self._generation += 1
        self.valid = None
        if not first:
            self.reloads += 1
        log.info("credential loaded", fingerprint=self.fingerprint, reloads=self.reloads)
        return True

    async def refresh(self) -> bool:
        """Re-read the file in a thread, then tell the listeners (on the loop) when the key changed."""
        changed = await asyncio.to_thread(self.load)
        if changed:
            for listener in self._listeners:
                listener()
        return changed

    async def poll(self, interval_s: float) -> None:
        """Refresh every `interval_s` seconds, forever."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval_s)
