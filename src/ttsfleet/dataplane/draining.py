"""The gateway's lifecycle and its drain: stop taking sessions, let utterances finish, close with 1012.

Draining is started by SIGTERM (or SIGINT) only, never over the network, and happens once; every caller
waits for the same outcome. Sessions still open at the deadline are cut with 1012; then the process exits.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class Phase(enum.Enum):
    """The gateway's lifecycle; `Lifecycle.transition` is the only way to change it."""

    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    DRAINED = "drained"


_TRANSITIONS = {
    Phase.STARTING: {Phase.SERVING, Phase.DRAINING},
    Phase.SERVING: {Phase.DRAINING},
    Phase.DRAINING: {Phase.DRAINED},
    Phase.DRAINED: set(),
}


class Drainable(Protocol):
    """A session as the drain sees it."""

    def begin_drain(self) -> None: ...

    def cut(self) -> None: ...


class Lifecycle:
    """Phase, open sessions, and the drain that ends both."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self._sessions: set[Drainable] = set()
        self._empty = asyncio.Event()
        self._empty.set()
        self._drained = asyncio.Event()

    def transition(self, new: Phase) -> None:
        if new not in _TRANSITIONS[self.phase]:
            raise RuntimeError(f"gateway: illegal transition {self.phase.value} → {new.value}")
        log.info("gateway phase", phase=new.value, previous=self.phase.value)
        self.phase = new

    @property
    def is_draining(self) -> bool:
        return self.phase in (Phase.DRAINING, Phase.DRAINED)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def add(self, session: Drainable) -> None:
        self._sessions.add(session)
        self._empty.clear()
        if self.is_draining:
            session.begin_drain()

    def remove(self, session: Drainable) -> None:
        self._sessions.discard(session)
        if not self._sessions:
            self._empty.set()

    async def drain(self, timeout_s: float) -> bool:
        """Drain once (later callers wait for the first); True when every session ended in time."""
        if self.is_draining:
            await self._drained.wait()
            return not self._sessions
        self.transition(Phase.DRAINING)
        for session in list(self._sessions):
            session.begin_drain()
        try:
            async with asyncio.timeout(timeout_s):
                await self._empty.wait()
            clean = True
        except TimeoutError:
            clean = False
            log.warning("drain deadline passed; cutting sessions", sessions=len(self._sessions))
            for session in list(self._sessions):
                session.cut()
            await self._wait_briefly()
        self.transition(Phase.DRAINED)
        self._drained.set()
        return clean

    async def _wait_briefly(self) -> None:
        try:
            async with asyncio.timeout(5.0):  # cut sessions only need to send their close frames
                await self._empty.wait()
        except TimeoutError:
            log.warning("sessions still open after the drain", sessions=len(self._sessions))
