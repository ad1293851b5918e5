"""Per-socket limits the client keeps itself, so it rotates sockets instead of being refused. Pure.

Deepgram allows 2400 characters and 20 Flushes per socket within 60 s (PROTOCOL.md); going over closes
the socket (characters) or skips the Flush with a Warning, which would leave a request without audio.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 60.0
MAX_CHARS = 2400
MAX_FLUSHES = 20


@dataclass
class SocketBudget:
    """Characters and Flushes spent on one socket within the sliding window; times come from the caller."""

    window_s: float = WINDOW_S
    max_chars: int = MAX_CHARS
    max_flushes: int = MAX_FLUSHES
    _chars: deque[tuple[float, int]] = field(default_factory=deque)
    _flushes: deque[float] = field(default_factory=deque)

    def _expire(self, now: float) -> None:
        while self._chars and self._chars[0][0] <= now - self.window_s:
            self._chars.popleft()
        while self._flushes and self._flushes[0] <= now - self.window_s:
            self._flushes.popleft()

    def spend_chars(self, count: int, now: float) -> None:
        self._chars.append((now, count))

    def spend_flush(self, now: float) -> None:
        self._flushes.append(now)

    def exhaust_flushes(self, now: float) -> None:
        """The server refused a Flush: take the socket as out of Flushes for the rest of the window."""
        self._expire(now)
        for _ in range(max(0, self.flushes_left(now))):
            self._flushes.append(now)

    def chars_left(self, now: float) -> int:
        self._expire(now)
        return self.max_chars - sum(count for _, count in self._chars)

    def flushes_left(self, now: float) -> int:
        self._expire(now)
        return self.max_flushes - len(self._flushes)

    def has_room_for_request(self, now: float, reserve_chars: int = 600, reserve_flushes: int = 2) -> bool:
        """Whether a new request should start on this socket rather than on a fresh one."""
        return self.chars_left(now) >= reserve_chars and self.flushes_left(now) >= reserve_flushes
