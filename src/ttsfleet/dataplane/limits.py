"""Input limits: characters per minute per fleet token, sessions per pod, and what text may contain.

Pure: time is injected. Refusals raise errors whose wire meaning the caller sends (1008 DATA-0001 on
the socket, 429 on REST; 1008 DATA-0000 / 400 for text that is not text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ttsfleet.dataplane.errors import CharacterBudgetExceeded, TextRejected
from ttsfleet.dataplane.seams import Clock

# C0 and C1 controls except tab, newline and carriage return, which speech engines treat as pauses.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
# Buckets untouched this long are full again anyway; dropping them bounds memory per token seen.
_IDLE_BUCKET_S = 300.0


def clean_text(text: str) -> str:
    """Text fit to forward: controls become spaces; lone surrogates (not encodable as UTF-8) are refused."""
    if _SURROGATES.search(text):
        raise TextRejected("text contains lone surrogates and is not valid Unicode")
    return _CONTROL_CHARACTERS.sub(" ", text)


@dataclass(slots=True)
class TokenBucket:
    """`capacity` units, refilled continuously at `rate_per_s`."""

    capacity: float
    rate_per_s: float
    level: float
    updated_at: float

    def take(self, amount: float, now: float) -> bool:
        """Take `amount` if available now; False (and nothing taken) otherwise."""
        self.level = min(self.capacity, self.level + (now - self.updated_at) * self.rate_per_s)
        self.updated_at = now
        if amount > self.level:
            return False
        self.level -= amount
        return True


class CharacterLimiter:
    """A token bucket of characters per fleet token: a minute's worth, refilled per second."""

    def __init__(self, clock: Clock, chars_per_minute: int) -> None:
        self._clock = clock
        self._per_minute = float(chars_per_minute)
        self._buckets: dict[str, TokenBucket] = {}
        self._last_pruned = 0.0

    @property
    def chars_per_minute(self) -> int:
        """The current limit per token."""
        return int(self._per_minute)

    def set_rate(self, chars_per_minute: int) -> None:
        """A new limit (this pod's part of a fleet-wide one): each bucket keeps the fraction it had left,
        so a token that spent half its minute here has half of the new allowance, whichever way it moved."""
        now = self._clock.monotonic()
        old = self._per_minute
        self._per_minute = float(chars_per_minute)
        for bucket in self._buckets.values():
            bucket.take(0, now)  # bring the level up to now at the old rate first
            bucket.level = bucket.level / old * self._per_minute if old else self._per_minute
            bucket.capacity = self._per_minute
            bucket.rate_per_s = self._per_minute / 60

    def charge(self, token_id: str | None, chars: int) -> None:
        """Charge `chars` to `token_id` (None: auth disabled, no tokens to limit); raises when over."""
        if token_id is None or chars == 0:
            return
        now = self._clock.monotonic()
        self._prune(now)
        bucket = self._buckets.get(token_id)
        if bucket is None:
            bucket = self._buckets[token_id] = TokenBucket(
                self._per_minute, self._per_minute / 60, self._per_minute, now
            )
        if not bucket.take(chars, now):
            raise CharacterBudgetExceeded(
                f"more than {int(self._per_minute)} characters per minute for this token"
            )

    def _prune(self, now: float) -> None:
        if now - self._last_pruned < _IDLE_BUCKET_S:
            return
        self._last_pruned = now
        for token_id in [t for t, b in self._buckets.items() if now - b.updated_at > _IDLE_BUCKET_S]:
            del self._buckets[token_id]


class SessionLimiter:
    """Counts client sessions against the pod's maximum."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self.active = 0
        self.total = 0

    def try_open(self) -> bool:
        if self.active >= self.max_sessions:
            return False
        self.active += 1
        self.total += 1
        return True

    def close(self) -> None:
        if self.active <= 0:
            raise RuntimeError("session closed twice")
        self.active -= 1
