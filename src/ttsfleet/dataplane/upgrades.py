"""WebSocket upgrades taken a few at a time, so that a crowd connecting does not stall those speaking.

An upgrade costs the gateway more than half a millisecond of CPU (the request, the handshake, the
session's admission and set-up), spread over several passes of the event loop. A crowd of agents that
connects at once (a pod restarted, a new pod behind a busy Service, a network blip) put hundreds of
upgrades into the same passes as the utterances of sessions already connected: each pass then took tens
of milliseconds, and an utterance, which needs several passes from its Flush to its first audio, waited
hundreds (docs/performance.md). Here at most `limit` upgrades are under way at once and the others wait
their turn in arrival order, so a pass holds a bounded amount of upgrade work. The crowd connects at the
same rate (the CPU each upgrade needs is the same); those already speaking keep their latency.

An upgrade is under way from its request head to the handshake's answer (101 or a refusal), or until the
session's set-up waits for something other than CPU (`settled`); at most `max_waiting` upgrades wait,
and beyond that an upgrade is refused with 503 at once rather than queued without bound.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field


class Turn(enum.Enum):
    NOW = "now"  # go ahead
    QUEUED = "queued"  # `start` is called when a turn comes
    REFUSED = "refused"  # the queue is full: answer 503


@dataclass
class UpgradePacer:
    """Grants upgrades turns: `limit` at once, then first come, first served."""

    limit: int
    max_waiting: int
    queued: int = 0  # upgrades that waited their turn, for `/metrics` (refusals count as 503 there)
    _under_way: int = 0
    # Insertion-ordered: the oldest waiting upgrade is first; a connection that leaves is removed by key.
    _waiting: dict[object, Callable[[], None]] = field(default_factory=dict)

    @property
    def under_way(self) -> int:
        return self._under_way

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def ask(self, connection: object, start: Callable[[], None]) -> Turn:
        """`connection` wants to upgrade; on QUEUED, `start` runs in a later pass when its turn comes."""
        if self._under_way < self.limit and not self._waiting:
            self._under_way += 1
            return Turn.NOW
        if len(self._waiting) >= self.max_waiting:
            return Turn.REFUSED
        self._waiting[connection] = start
        self.queued += 1
        return Turn.QUEUED

    def withdraw(self, connection: object) -> None:
        """A waiting connection went away: it gives up its place."""
        self._waiting.pop(connection, None)

    def finished(self) -> None:
        """An upgrade granted a turn is done with it: the next waiting one starts, in a pass of its own."""
        self._under_way -= 1
        if self._waiting and self._under_way < self.limit:
            connection = next(iter(self._waiting))
            start = self._waiting.pop(connection)
            self._under_way += 1
            asyncio.get_running_loop().call_soon(start)
