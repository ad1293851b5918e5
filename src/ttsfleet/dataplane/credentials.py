"""The Deepgram key: read from a mounted file, re-read on change, judged by what Deepgram answers.

`KeyFile` is the one `CredentialSource`. Its generation goes up with every new key, so the pool can
retire sockets opened with an older one; `valid` is None until Deepgram accepted or refused the key.

A key is judged bad only on evidence: a refused fresh handshake, or `REFUSALS_TO_JUDGE` refusals in a
row on REST (one 401 from a REST request can be a hiccup upstream). Any refusal leaves the key
`doubted`: the pool then re-checks it with a fresh handshake on the schedule of `recheck_delay_s`,
so a key refused by mistake is accepted again within seconds, without waiting for a socket recycle.
A file that cannot hold a key (larger than `MAX_CREDENTIAL_BYTES`, or with whitespace or control
characters inside) is not loaded: the gateway reports no key instead of timing out on every connect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog

from ttsfleet.fingerprints import fingerprint_secret
from ttsfleet.protocol import MAX_CREDENTIAL_BYTES, credential_problem

log = structlog.get_logger(__name__)

REFUSALS_TO_JUDGE = 3  # REST refusals in a row that judge the key invalid without a handshake's word
MAX_RECHECK_S = 10.0  # the longest wait between two re-checks of a refused key


def recheck_delay_s(refusals: int) -> float:
    """How long after a re-check the next may run, for a key refused `refusals` times in a row: 1 s,
    doubling from the third refusal, at most `MAX_RECHECK_S`. The first re-check after a doubt is at once."""
    return min(2.0 ** max(0, refusals - 2), MAX_RECHECK_S)


def read_key(path: Path) -> tuple[str | None, str | None]:
    """The key in a key file (blocking) and, when it holds none usable, why. OSError passes.

    Reads at most a little more than a key can be, so a huge file costs no memory.
    """
    with path.open("rb") as file:
        raw = file.read(MAX_CREDENTIAL_BYTES + 64)
    key = raw.decode("utf-8-sig", errors="replace").strip()
    if not key:
        return None, "the key file is empty"
    problem = credential_problem(key)
    if problem is not None:
        return None, f"the key file holds no key: {problem}"
    return key, None


class KeyFile:
    """The current key from `path`; `poll` keeps it current."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._key: str | None = None
        self._generation = 0
        self.valid: bool | None = None
        self.refusals = 0  # refusals since Deepgram last accepted the key
        self.problem: str | None = None  # why the file holds no usable key
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

    @property
    def doubted(self) -> bool:
        """Refused since it was last accepted: the pool re-checks it with a fresh handshake."""
        return self.refusals > 0

    def report(self, accepted: bool, *, fresh_handshake: bool) -> None:
        """What Deepgram said about the current key: a socket that opened or a REST answer (accepted),
        a refused handshake (`fresh_handshake`) or a refused REST request."""
        if accepted:
            self.refusals = 0
            judged: bool | None = True
        else:
            self.refusals += 1
            conclusive = fresh_handshake or self.refusals >= REFUSALS_TO_JUDGE
            judged = False if conclusive else self.valid
        if self.valid is not judged:
            log.info("credential judged", fingerprint=self.fingerprint, valid=judged, refusals=self.refusals)
        self.valid = judged

    def load(self) -> bool:
        """Read the file (blocking, listeners not called); True when the key changed.

        A missing file keeps the last key: a Secret update swaps a symlink and the file is briefly absent.
        """
        try:
            key, problem = read_key(self._path)
        except OSError:
            if self._key is None:
                return False
            key, problem = self._key, None
        if problem != self.problem and problem is not None:
            log.warning("credential file unusable", problem=problem)
        self.problem = problem
        if key == self._key:
            return False
        first = self._key is None and self._generation == 0
        self._key = key
        self._generation += 1
        self.valid = None
        self.refusals = 0
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
