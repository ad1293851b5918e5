"""Retry policy per error class: exponential backoff with full jitter, never after audio went out.

Pure: the caller says how many attempts were made and whether any audio reached the client; the
policy answers whether to try again and how long to wait first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ttsfleet.dataplane.errors import ErrorClass, UpstreamError

# Classes worth another attempt: the same request may well succeed on another socket or a moment later.
RETRYABLE_CLASSES: frozenset[ErrorClass] = frozenset(
    {ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED, ErrorClass.UPSTREAM_PROTOCOL}
)
# A 429 means the project is over its concurrency: wait longer than for a dropped socket.
RATE_LIMIT_BACKOFF_FACTOR = 4.0


@dataclass(frozen=True)
class RetryPolicy:
    """When and after how long to try an utterance again."""

    max_attempts: int
    base_delay_s: float
    max_delay_s: float
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def should_retry(self, error: UpstreamError, attempts_made: int, audio_sent: bool) -> bool:
        """Retry only retryable classes, within the attempt budget, and only while nothing was sent."""
        return not audio_sent and attempts_made < self.max_attempts and error.error_class in RETRYABLE_CLASSES

    def delay_s(self, error: UpstreamError, attempts_made: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempts_made-1)) * class factor]."""
        factor = RATE_LIMIT_BACKOFF_FACTOR if error.error_class is ErrorClass.RATE_LIMITED else 1.0
        ceiling = min(self.max_delay_s, self.base_delay_s * factor * 2 ** max(0, attempts_made - 1))
        return self.rng.uniform(0.0, ceiling)
